import { defaultRegistry } from 'oven-sse'

// On SIGTERM, `next start` stops accepting and then waits for every open request to end
// before it exits, and an event stream does not end by itself: end them all cleanly (each
// client gets a complete response and reconnects elsewhere), so Next can exit at once.
process.once('SIGTERM', () => {
  void defaultRegistry.closeAll()
})
