/**
 * Demonstration — graceful shutdown with open streams.
 *
 * On SIGTERM (what Kubernetes, systemd and Docker send) or Ctrl+C, `installShutdownHandlers`:
 *   1. aborts every stream's `ctx.signal` with reason `shutdown`;
 *   2. gives each source GRACE_MS to send farewell events — here `event: shutdown`;
 *   3. ends every response properly, so clients see a clean end (and reconnect elsewhere);
 *   4. closes the server, and the process exits on its own: nothing is left to hold it open.
 *
 * Without this, `server.close()` waits forever for streams that never end, and the
 * orchestrator kills the process mid-write after its timeout.
 *
 * Run:  npx tsx examples/demonstrations/basic_patterns/graceful_shutdown.ts
 * Then: curl -N http://127.0.0.1:8000/events, and press Ctrl+C on the server.
 *
 * Environment: PORT (default 8000), TICK_MS (default 1000), GRACE_MS (default 2000).
 */

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  defaultRegistry,
  installShutdownHandlers,
  type StreamContext,
  sendEventStream,
} from '../../../src/node.ts'

const tick = Number(process.env.TICK_MS ?? 1000)
const grace = Number(process.env.GRACE_MS ?? 2000)
let streams = 0

async function* ticks({ signal }: StreamContext) {
  const stream = ++streams
  let n = 0
  try {
    while (!signal.aborted) {
      n++
      yield { id: String(n), data: `tick ${n} from stream ${stream}` }
      await sleep(tick, undefined, { signal }).catch(() => {})
    }
    // The signal aborted. On shutdown, the source may still yield during the grace period.
    if (signal.reason === 'shutdown') {
      yield { event: 'shutdown', data: 'server is shutting down, goodbye' }
      console.log(`stream ${stream}: farewell sent after ${n} ticks`)
    }
  } finally {
    console.log(`stream ${stream}: closed (${String(signal.reason ?? 'done')})`)
  }
}

const server = createServer((req, res) => {
  if (new URL(req.url ?? '/', 'http://localhost').pathname === '/events') {
    void sendEventStream(req, res, ticks)
    return
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('try /events\n')
})

installShutdownHandlers(server, {
  grace,
  // Let the process end by itself once the server has closed: if anything were still open
  // (a timer, a socket), it would hang here instead of exiting, and you would notice.
  exit: false,
  onDone(error) {
    if (error) {
      console.error('shutdown failed:', error)
      process.exitCode = 1
    } else {
      console.log(`shutdown complete (open streams: ${defaultRegistry.size}); exiting`)
    }
  },
})
console.log(`shutdown: ${grace} ms of grace for farewell events`)

server.listen(Number(process.env.PORT ?? 8000), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(`listening on http://127.0.0.1:${port}`)
  console.log(`  curl -N http://127.0.0.1:${port}/events, then stop the server with Ctrl+C`)
})
