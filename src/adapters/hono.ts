/**
 * The Hono helper: `return sse(c, content, options)` from a handler.
 *
 * Hono quirks handled here: a handler's `Response` is sent as soon as it is returned, so the
 * content function runs *before* the response is made (through `openEventSourceResponse`); a
 * throw rejects the returned promise and reaches Hono's `onError` and its normal error
 * response. Headers a middleware set with `c.header()` apply only to responses made through
 * `c`, so the helper carries them over itself. The request comes from `c`. Web-standard only: runs on `@hono/node-server`, Bun,
 * Deno and Cloudflare Workers alike.
 *
 * @module
 */

import type { Context } from 'hono'
import { mergeHeaders } from '../stream/headers.ts'
import type { Content, StreamOptions } from '../stream/types.ts'
import type { EventSourceResponse, EventSourceResponseOptions } from '../transports/web.ts'
import { openEventSourceResponse } from '../transports/web-open.ts'

/** Options of {@link sse}: the stream options; `ctx.request` is the web `Request`. */
export type HonoSseOptions = StreamOptions<Request>

/**
 * Streams `content` as Server-Sent Events from a Hono handler. The request comes from `c`: its
 * signal stops the source when the client goes away, and its `Last-Event-ID` (or `lastEventId`
 * query parameter) becomes `ctx.lastEventId`.
 *
 * Headers set with `c.header()` before the call (by a middleware, say) are sent with the
 * stream — a `Cache-Control` among them replaces Oven's default — and the `headers` option wins
 * over them; framing headers (`Content-Type`, `Content-Length`, `Connection`, …) stay Oven's.
 *
 * If `content` is a function, it runs before the response is made: when it throws or rejects,
 * the promise rejects and Hono's `onError` sends its usual error response. Either way the
 * result is an `EventSourceResponse`, whose `closed` settles with the close reason.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { sse } from 'oven-sse/hono'
 *
 * const app = new Hono()
 * app.get('/events', (c) =>
 *   sse(c, async function* ({ signal, lastEventId }) {
 *     let i = Number(lastEventId ?? 0)
 *     while (!signal.aborted) {
 *       yield { id: String(++i), data: `tick ${i}` }
 *       await new Promise((resolve) => setTimeout(resolve, 1000))
 *     }
 *   }),
 * )
 * export default app
 * ```
 */
export function sse(
  c: Context,
  content: Content<Request>,
  options: HonoSseOptions = {},
): Promise<EventSourceResponse> {
  // `EventSourceResponse` types `ctx.request` as `Request | undefined` (the request is optional
  // there); here it is always given, so the narrower types are sound.
  const webOptions = { ...options, request: c.req.raw } as EventSourceResponseOptions
  // `c.header()` values wait in `c` for a response made through it; a fresh one shows them
  // without making `c.res` (which would have Hono copy them over the stream's own head).
  const preset = c.newResponse(null).headers
  if (!preset.keys().next().done) webOptions.headers = mergeHeaders(preset, options.headers)
  return openEventSourceResponse(content as Content<Request | undefined>, webOptions)
}
