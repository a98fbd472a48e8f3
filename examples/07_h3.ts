/**
 * 07 — h3 v2 (the server of Nitro and Nuxt) with `oven-sse/h3`.
 *
 * Run:  npx tsx examples/07_h3.ts
 * Then: curl -N http://127.0.0.1:8000/events
 *
 * Endpoints:
 *   /events             `id` + `data` every tick; resumes after `Last-Event-ID` (or
 *                       `?lastEventId=`); a middleware's headers ride along; the server logs
 *                       when the client goes away
 *   /rooms/<name>       an authorisation check before the stream: without `?token=letmein`,
 *                       h3's own 401 (JSON), never a 200 stream carrying an error
 *
 * SIGTERM or Ctrl+C ends every open stream cleanly, then closes the server and exits.
 *
 * Environment: PORT (default 8000), TICK_MS (default 1000).
 */

import { setTimeout as sleep } from 'node:timers/promises'
import { H3, HTTPError, serve } from 'h3'
import { sse } from '../src/h3.ts'
import { installShutdownHandlers } from '../src/node.ts'

const tick = Number(process.env.TICK_MS ?? 1000)

const app = new H3()

// Headers set by a middleware reach the stream's head (framing headers stay Oven's).
app.use((event) => {
  event.res.headers.set('x-powered-by', 'h3 + oven-sse')
})

app.get('/events', (event) =>
  sse(event, async function* ({ signal, lastEventId }) {
    let id = Number(lastEventId ?? 0)
    try {
      while (true) {
        id++
        yield { id: String(id), data: `tick ${id}` }
        // ctx.signal aborts the moment the client leaves: the sleep ends at once.
        await sleep(tick, undefined, { signal })
      }
    } finally {
      console.log(`stream ended after id ${id} (${String(signal.reason)})`)
    }
  }),
)

app.get('/rooms/:name', (event) =>
  sse(event, async ({ signal }) => {
    // Runs before the response exists: a throw here is h3's error response.
    if (event.url.searchParams.get('token') !== 'letmein') {
      throw new HTTPError({ status: 401, message: 'a token is required' })
    }
    const room = event.context.params?.name ?? 'lobby'
    return (async function* () {
      for (let n = 1; !signal.aborted; n++) {
        yield { event: 'message', data: { room, n } }
        await sleep(tick, undefined, { signal })
      }
    })()
  }),
)

const server = serve(app, {
  port: Number(process.env.PORT ?? 8000),
  hostname: '127.0.0.1',
  // Oven's handlers below end the streams cleanly first; srvx's own would wait 5 s for them
  // and then cut them.
  gracefulShutdown: false,
  silent: true,
})
await server.ready()

const nodeServer = server.node?.server
if (!nodeServer) throw new Error('expected a Node server')
installShutdownHandlers(nodeServer, {
  // Nothing is left to hold the process once the server has closed: it exits on its own.
  exit: false,
  onDone(error) {
    console.log(error ? `shutdown failed: ${String(error)}` : 'shutdown complete; exiting')
  },
})

console.log(`listening on ${server.url?.replace(/\/$/, '')}`)
