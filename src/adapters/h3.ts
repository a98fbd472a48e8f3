/**
 * The h3 v2 helper: `return sse(event, content, options)` from a handler.
 *
 * h3 quirks handled here (read in h3 2.0.8, `dist/response.mjs`, `prepareResponse`):
 *
 * - Headers a middleware set on `event.res.headers` are merged *over* a returned `Response`'s
 *   own, so a preset `Content-Type` or `Content-Length` would replace Oven's framing (measured:
 *   `Content-Length: 3` cut the stream after three bytes). The helper takes them into the
 *   stream's head by Oven's rule and empties `event.res.headers`, so h3 sends the head as is.
 * - A returned `Response` is sent as it is, so a content function that throws inside an
 *   `EventSourceResponse` could only end a stream whose `200` is out; the helper runs it first
 *   (through `openEventSourceResponse`) and a throw reaches h3's `onError` and error response.
 * - h3 answers `HEAD` with the head alone and never reads (nor cancels) the body; that needs
 *   nothing here, since a `HEAD` request's `EventSourceResponse` has no body (its stream ends
 *   with reason `done`, see `transports/web.ts`).
 *
 * Disconnects need nothing from h3: on Node, srvx aborts `event.req.signal` when the response
 * closes before it ended, and cancels the body; elsewhere the runtime's request signal and the
 * body's cancel do it. Web-standard only.
 *
 * @module
 */

import type { H3Event } from 'h3'
import { mergeHeaders, takeHeaders } from '../stream/headers.ts'
import type { Content, StreamOptions } from '../stream/types.ts'
import type { EventSourceResponse, EventSourceResponseOptions } from '../transports/web.ts'
import { openEventSourceResponse } from '../transports/web-open.ts'

/** Options of {@link sse}: the stream options; `ctx.request` is `event.req`, a web `Request`. */
export type H3SseOptions = StreamOptions<Request>

/**
 * Streams `content` as Server-Sent Events from an h3 v2 handler. The request is `event.req`:
 * its signal stops the source when the client goes away, and its `Last-Event-ID` (or
 * `lastEventId` query parameter) becomes `ctx.lastEventId`.
 *
 * Headers set on `event.res.headers` before the call (by a middleware, say) are sent with the
 * stream — a `Cache-Control` among them replaces Oven's default — and the `headers` option wins
 * over them; framing headers (`Content-Type`, `Content-Length`, `Connection`, …) stay Oven's.
 *
 * If `content` is a function, it runs before the response is made: when it throws or rejects,
 * the promise rejects and h3 answers with its error response (an `HTTPError`'s status, or 500)
 * through `onError`. Either way the result is an `EventSourceResponse`, whose `closed` settles
 * with the close reason.
 *
 * @example
 * ```ts
 * import { H3, serve } from 'h3'
 * import { sse } from 'oven-sse/h3'
 *
 * const app = new H3()
 * app.get('/events', (event) =>
 *   sse(event, async function* ({ signal, lastEventId }) {
 *     let i = Number(lastEventId ?? 0)
 *     while (!signal.aborted) {
 *       yield { id: String(++i), data: `tick ${i}` }
 *       await new Promise((resolve) => setTimeout(resolve, 1000))
 *     }
 *   }),
 * )
 * serve(app, { port: 8000 })
 * ```
 */
export async function sse(
  event: H3Event,
  content: Content<Request>,
  options: H3SseOptions = {},
): Promise<EventSourceResponse> {
  const request: Request = event.req
  // `EventSourceResponse` types `ctx.request` as `Request | undefined` (the request is optional
  // there); here it is always given, so the narrower types are sound.
  const webOptions = { ...options, request } as EventSourceResponseOptions
  const preset = takeHeaders(event.res.headers)
  if (preset !== undefined) webOptions.headers = mergeHeaders(preset, options.headers)
  return openEventSourceResponse(content as Content<Request | undefined>, webOptions)
}
