/**
 * The Hono helper: `return sse(c, content, options)` from a handler.
 *
 * Hono quirks handled here: a handler's `Response` is sent as soon as it is returned, so the
 * content function runs *before* the response is made (through `openEventSourceResponse`); a
 * throw rejects the returned promise and reaches Hono's `onError` and its normal error
 * response. Headers a middleware set with `c.header()` apply only to responses made through
 * `c`, so the helper carries them over itself. The request comes from `c`. Runs on
 * `@hono/node-server`, Bun, Deno and Cloudflare Workers alike: nothing from Node is imported at
 * run time.
 *
 * The fast path: on `@hono/node-server`, whose bindings (`c.env.incoming`, `c.env.outgoing`)
 * give the Node request and response, a stream that no middleware wraps is written to the Node
 * response by Oven's Node transport, as `sendEventStream` does, and the handler returns the
 * server's "already sent" answer. The web `ReadableStream` that node-server would otherwise
 * copy into the Node response costs about 2.3 times the heap per idle connection and up to 1.6
 * times the CPU per delivery (the bench's `oven-hono` against `oven-hono-web`, docs/hono.md).
 *
 * @module
 */

import type { Context } from 'hono'
import { invalidOption } from '../errors.ts'
import { mergeHeaders } from '../stream/headers.ts'
import { resolveOptions } from '../stream/options.ts'
import type { Content, StreamOptions } from '../stream/types.ts'
import { type NodeRequest, type NodeResponse, streamResponse } from '../transports/node.ts'
import {
  EventSourceResponse,
  type EventSourceResponseOptions,
  SentStream,
} from '../transports/web.ts'
import { openEventSourceResponse } from '../transports/web-open.ts'

/** Options of {@link sse}: the stream options; `ctx.request` is the web `Request`. */
export interface HonoSseOptions extends StreamOptions<Request> {
  /**
   * On `@hono/node-server`: whether the stream may be written to the Node response directly
   * (`c.env.outgoing`), Oven's fast path, when no middleware runs before the handler. `false`
   * always returns a streaming web `Response`: for an app whose `fetch` is wrapped by code
   * that reads or changes the response (the wrapper then gets a body-less answer).
   * Elsewhere (Bun, Deno, Workers, `app.fetch()` called directly) the option changes nothing.
   *
   * @defaultValue `true`
   */
  direct?: boolean | undefined
}

/**
 * Streams `content` as Server-Sent Events from a Hono handler. The request comes from `c`: its
 * signal stops the source when the client goes away, and its `Last-Event-ID` (or `lastEventId`
 * query parameter) becomes `ctx.lastEventId`.
 *
 * Headers set with `c.header()` before the call (by a middleware, say) are sent with the
 * stream — a `Cache-Control` among them replaces Oven's default — and the `headers` option wins
 * over them; framing headers (`Content-Type`, `Content-Length`, `Connection`, …) stay Oven's.
 *
 * If `content` is a function, it runs before anything is sent: when it throws or rejects, the
 * promise rejects and Hono's `onError` sends its usual error response. Either way the result
 * is an `EventSourceResponse`, whose `closed` settles with the close reason.
 *
 * On `@hono/node-server`, when no middleware runs before the handler (none matched the
 * request, or the route is registered before them) and the request is not a `HEAD`, the stream
 * is written to the Node response directly, as `sendEventStream` does (see
 * {@link HonoSseOptions.direct}); the `EventSourceResponse` is then the server's "already
 * sent" answer: the status sent, no body, and `closed` as always.
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
export async function sse(
  c: Context,
  content: Content<Request>,
  options: HonoSseOptions = {},
): Promise<EventSourceResponse> {
  let streamOptions: StreamOptions<Request> = options
  let direct = true
  if (typeof options === 'object' && options !== null && 'direct' in options) {
    // Taken out: the stream options are checked against the stream's own names.
    const { direct: given, ...rest } = options
    if (given !== undefined && typeof given !== 'boolean') {
      invalidOption('direct', 'a boolean', given)
    }
    direct = given !== false
    streamOptions = rest
  }
  // `c.header()` values wait in `c` for a response made through it; a fresh one shows them
  // without making `c.res` (which would have Hono copy them over the stream's own head).
  const preset = c.newResponse(null).headers
  if (!preset.keys().next().done) {
    streamOptions = { ...streamOptions, headers: mergeHeaders(preset, streamOptions.headers) }
  }
  const node = direct ? unwrappedNodeResponse(c) : undefined
  if (node) return streamToNode(c, node, content, streamOptions)
  // `EventSourceResponse` types `ctx.request` as `Request | undefined` (the request is optional
  // there); here it is always given, so the narrower types are sound.
  const webOptions = { ...streamOptions, request: c.req.raw } as EventSourceResponseOptions
  return openEventSourceResponse(content as Content<Request | undefined>, webOptions)
}

/** `@hono/node-server`'s `HttpBindings` / `Http2Bindings`, duck-typed: no import of the server. */
interface NodeBindings {
  incoming: NodeRequest
  outgoing: NodeResponse
}

/**
 * The Node request and response under `c`, when the fast path may write to them: on
 * `@hono/node-server` (its bindings in `c.env`), for a request other than `HEAD`, from the
 * first handler of the route's chain.
 *
 * - A middleware before the handler (`c.req.routeIndex > 0`) may read or replace `c.res`
 *   after `next()` (compress, etag, secure-headers, cors's `Vary`), and Hono itself copies a
 *   response into a new one when `c.res` was read before (cors does): node-server would then
 *   write a second head over the stream. Such a stream takes the web path.
 * - Hono answers `HEAD` by wrapping the `GET` response in a new one: the web path, which sends
 *   the head alone, as the Node transport would.
 */
function unwrappedNodeResponse(c: Context): NodeBindings | undefined {
  if (c.req.routeIndex !== 0 || c.req.method === 'HEAD') return undefined
  const env = c.env as Partial<NodeBindings> | undefined
  const incoming = env?.incoming
  const outgoing = env?.outgoing
  if (typeof outgoing?.writeHead !== 'function' || typeof incoming?.headers !== 'object') {
    return undefined
  }
  return { incoming, outgoing }
}

/**
 * The header with which a handler tells `@hono/node-server` (1.9 and later) that it wrote the
 * response itself: a body-less `Response` carrying it is not sent (node-server's
 * `RESPONSE_ALREADY_SENT`, `X_ALREADY_SENT` in its source).
 */
const ALREADY_SENT = { 'x-hono-already-sent': 'true' }

/**
 * The fast path: the stream goes to the Node response through Oven's Node transport. Resolves
 * once the head is out (or the request was answered without a stream: a `503` past the
 * connection limit, a client gone meanwhile); rejects, with nothing sent, when the content
 * function or the limiter's key function fails, so that Hono's `onError` answers.
 */
async function streamToNode(
  c: Context,
  node: NodeBindings,
  content: Content<Request>,
  options: StreamOptions<Request>,
): Promise<EventSourceResponse> {
  const { incoming, outgoing } = node
  let headDone!: () => void
  const headOut = new Promise<void>((resolve) => {
    headDone = resolve
  })
  const closed = streamResponse(incoming, outgoing, content, resolveOptions(options), c.req.raw, {
    headDone,
  })
  await Promise.race([headOut, closed])
  const init = { status: outgoing.statusCode, headers: ALREADY_SENT }
  const response = new EventSourceResponse(new SentStream(closed, init))
  // node-server replaces the global `Response` with a lighter one when it starts; had it done
  // so before this module loaded, `EventSourceResponse` extends that one, which keeps its
  // status, body and headers in a cache that node-server answers from, without looking for the
  // "already sent" header. Reading `body` gives up that cache (a standard `Response` just
  // returns `null`).
  void response.body
  return response
}
