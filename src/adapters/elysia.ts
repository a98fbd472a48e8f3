/**
 * The Elysia helper: `return sse(ctx, content, options)` from a handler.
 *
 * Elysia quirks handled here:
 * - A handler's `Response` is sent as soon as it is returned, so the content function runs
 *   *before* the response is made (through `openEventSourceResponse`); a throw rejects the
 *   returned promise and reaches Elysia's error handling (`onError`, a thrown `status(401)`).
 * - Elysia merges `set.headers` into a returned `Response` under rules that changed between
 *   versions (`createResponseHandler` in its `src/adapter/utils.ts`; 1.4.30 is tested by
 *   test/integrations/elysia.test.ts). Since 1.4.19 the `Response`'s own headers win, so a
 *   `Cache-Control` in `set.headers` is silently lost; up to 1.4.18 they were *appended*, so a
 *   `Content-Type` there made `text/event-stream; charset=utf-8, text/html`, which EventSource
 *   refuses. A `Transfer-Encoding: chunked` there has Elysia read the body and stream it again
 *   through its own generator handler, which up to 1.4.21 prefixed every chunk with `data: `
 *   (elysiajs/elysia#1661). The helper moves `set.headers` into the stream's own head under
 *   Oven's rules (a `Cache-Control` replaces Oven's default, framing headers stay Oven's) and
 *   leaves `set.headers` empty, so Elysia sends the response as it is.
 *
 * Web-standard only: no run-time import of Elysia.
 *
 * @module
 */

import type { Context } from 'elysia'
import { mergeHeaders, takeHeaders } from '../stream/headers.ts'
import type { Content, HeadersInput, StreamOptions } from '../stream/types.ts'
import type { EventSourceResponse, EventSourceResponseOptions } from '../transports/web.ts'
import { openEventSourceResponse } from '../transports/web-open.ts'

/** Options of {@link sse}: the stream options; `ctx.request` is the web `Request`. */
export type ElysiaSseOptions = StreamOptions<Request>

/** What {@link sse} needs of an Elysia handler's context: the request and `set`. */
export type ElysiaSseContext = Pick<Context, 'request' | 'set'>

/**
 * Streams `content` as Server-Sent Events from an Elysia handler. The request comes from `ctx`:
 * its signal stops the source when the client goes away, and its `Last-Event-ID` (or
 * `lastEventId` query parameter) becomes `ctx.lastEventId` of the source.
 *
 * Headers in `set.headers` (from the handler, a hook, `derive`, a plugin) are sent with the
 * stream — a `Cache-Control` among them replaces Oven's default — and the `headers` option wins
 * over them; framing headers (`Content-Type`, `Content-Length`, `Transfer-Encoding`, …) stay
 * Oven's. They are moved, not copied: `set.headers` is empty afterwards, so Elysia sends the
 * response untouched. `set.status` and cookies are left to Elysia.
 *
 * If `content` is a function, it runs before the response is made: when it throws or rejects,
 * the promise rejects and Elysia's error handling answers (`onError`, or the status of a thrown
 * `status(401, …)`). Either way the result is an `EventSourceResponse`, whose `closed` settles
 * with the close reason.
 *
 * @example
 * ```ts
 * import { Elysia } from 'elysia'
 * import { sse } from 'oven-sse/elysia'
 *
 * new Elysia()
 *   .get('/events', (ctx) =>
 *     sse(ctx, async function* ({ signal, lastEventId }) {
 *       let i = Number(lastEventId ?? 0)
 *       while (!signal.aborted) {
 *         yield { id: String(++i), data: `tick ${i}` }
 *         await new Promise((resolve) => setTimeout(resolve, 1000))
 *       }
 *     }),
 *   )
 *   .listen(3000)
 * ```
 */
export function sse(
  ctx: ElysiaSseContext,
  content: Content<Request>,
  options: ElysiaSseOptions = {},
): Promise<EventSourceResponse> {
  // `EventSourceResponse` types `ctx.request` as `Request | undefined` (the request is optional
  // there); here it is always given, so the narrower types are sound.
  const webOptions = { ...options, request: ctx.request } as EventSourceResponseOptions
  const preset = takeSetHeaders(ctx.set)
  if (preset !== undefined) webOptions.headers = mergeHeaders(preset, options.headers)
  return openEventSourceResponse(content as Content<Request | undefined>, webOptions)
}

/** Empties `set.headers` and returns what it held, or `undefined` when it held nothing. */
function takeSetHeaders(set: ElysiaSseContext['set']): HeadersInput | undefined {
  const headers: unknown = set.headers
  // Elysia turns `set.headers` into a `Headers` when a hook sets several cookies.
  if (headers instanceof Headers) return takeHeaders(headers)
  const record = set.headers as Record<string, string | number | string[] | undefined>
  const names = Object.keys(record)
  if (names.length === 0) return undefined
  const taken: Record<string, string | string[]> = {}
  for (const name of names) {
    const value = record[name]
    if (value !== undefined) taken[name] = Array.isArray(value) ? value : String(value)
    delete record[name]
  }
  return taken
}
