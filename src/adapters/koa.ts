/**
 * The Koa helper: `await sse(ctx, content, options)` in a middleware.
 *
 * Koa quirks handled here: Koa must not write a response of its own (`ctx.respond = false`),
 * but only once the stream is really going to start — if the content function throws, the
 * helper hands the response back to Koa (restores `ctx.respond`) and rejects, so Koa's error
 * handling (an error middleware, `ctx.onerror`) answers as usual. Headers set with `ctx.set()`
 * before the call are sent with the stream; errors while streaming are emitted on the app
 * (`app.on('error')`), the way Koa reports errors it cannot send.
 *
 * @module
 */

import type { IncomingMessage } from 'node:http'
import type { Context } from 'koa'
import type { CloseReason, Content, StreamOptions } from '../stream/types.ts'
import { sendEventStream } from '../transports/node.ts'

/** Options of {@link sse}: the stream options; `ctx.request` is Node's `IncomingMessage`. */
export type KoaSseOptions = StreamOptions<IncomingMessage>

/**
 * Streams `content` as Server-Sent Events on a Koa context. Await it (or return it) from the
 * middleware: it settles with the close reason once the stream has ended, and rejects before
 * anything is sent when a content function throws.
 *
 * @example
 * ```ts
 * import Koa from 'koa'
 * import { sse } from 'oven-sse/koa'
 *
 * const app = new Koa()
 * app.use(async (ctx) => {
 *   await sse(ctx, async function* ({ signal }) {
 *     for (let i = 0; !signal.aborted; i++) {
 *       yield { data: `tick ${i}` }
 *       await new Promise((resolve) => setTimeout(resolve, 1000))
 *     }
 *   })
 * })
 * app.listen(8000)
 * ```
 */
export async function sse(
  ctx: Pick<Context, 'req' | 'res' | 'respond' | 'app'>,
  content: Content<IncomingMessage>,
  options: KoaSseOptions = {},
): Promise<CloseReason> {
  const respond = ctx.respond
  // Set at once: a middleware that does not await us must not let Koa answer 404 meanwhile.
  ctx.respond = false
  try {
    return await sendEventStream(ctx.req, ctx.res, content, {
      ...options,
      onError: options.onError ?? ((error: unknown) => ctx.app.emit('error', error, ctx)),
    })
  } catch (error) {
    // Nothing was sent: give the response back to Koa so its error handling can answer.
    if (!ctx.res.headersSent) ctx.respond = respond
    throw error
  }
}
