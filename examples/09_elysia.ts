/**
 * 09 — Elysia on Bun with `oven-sse/elysia`.
 *
 * Run:  bun examples/09_elysia.ts        (Bun runs the TypeScript as it is; this repository's
 *                                         copy is node_modules/.bin/bun)
 * Then: curl -N http://127.0.0.1:8000/events
 *
 * Endpoints:
 *   /events             `id` + `data` every tick; resumes after `Last-Event-ID` (or
 *                       `?lastEventId=`); a header set by an `onBeforeHandle` hook rides along;
 *                       the server logs when the client goes away
 *   /rooms/<name>       an authorisation check before the stream: without `?token=letmein`,
 *                       Elysia's own 401, never a 200 stream carrying an error
 *
 * SIGTERM or Ctrl+C ends every open stream cleanly, then stops the app and exits.
 *
 * Environment: PORT (default 8000), TICK_MS (default 1000).
 */

import { setTimeout as sleep } from 'node:timers/promises'
import { Elysia, status } from 'elysia'
import { sse } from '../src/elysia.ts'
import { installShutdownHandlers } from '../src/index.ts'

const tick = Number(process.env.TICK_MS ?? 1000)

const app = new Elysia()
  // Headers in `set.headers` (from a hook, a derive or the handler) reach the stream's head;
  // the framing headers stay Oven's. Hooks apply to the routes registered after them.
  .onBeforeHandle(({ set }) => {
    set.headers['x-powered-by'] = 'elysia + oven-sse'
  })
  .get('/events', (ctx) =>
    sse(ctx, async function* ({ signal, lastEventId }) {
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
  // `async`: Elysia awaits a handler's result only when it sees that the handler is
  // asynchronous, and only an awaited rejection reaches its error handling (docs/elysia.md).
  .get('/rooms/:name', async (ctx) =>
    sse(ctx, async ({ signal }) => {
      // Runs before the response exists: a throw here is Elysia's error response.
      if (ctx.query.token !== 'letmein') throw status(401, 'a token is required')
      const room = ctx.params.name
      return (async function* () {
        for (let n = 1; !signal.aborted; n++) {
          yield { event: 'message', data: { room, n } }
          await sleep(tick, undefined, { signal })
        }
      })()
    }),
  )
  // Elysia's `listen` gives Bun.serve an idle timeout of 30 s; Oven's default ping on Bun (4 s)
  // keeps a quiet stream from reaching it.
  .listen({ port: Number(process.env.PORT ?? 8000), hostname: '127.0.0.1' })

installShutdownHandlers(
  { close: () => app.stop() },
  {
    // Nothing is left to hold the process once the app has stopped: it exits on its own.
    exit: false,
    onDone(error) {
      console.log(error ? `shutdown failed: ${String(error)}` : 'shutdown complete; exiting')
    },
  },
)

console.log(`listening on http://127.0.0.1:${app.server?.port}`)
