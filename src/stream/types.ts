/**
 * The public types of a stream: what content may be, what the source sees, the options.
 *
 * @module
 */

import type { EventInit, Separator, Serializer, ServerSentEvent } from '../encoder/encode.ts'
import type { Limiter } from '../limits/limiter.ts'
import type { StreamRegistry } from '../shutdown/registry.ts'

/**
 * One item a source produces:
 * - a string, sent as `data`;
 * - an event object `{ data?, event?, id?, retry?, comment? }` ({@link EventInit});
 * - a {@link ServerSentEvent}, encoded once however many streams send it;
 * - a `Uint8Array`, written as it is: you own its framing.
 */
export type ContentItem = string | EventInit | ServerSentEvent | Uint8Array

/**
 * Refuses a plain string where a source is expected: a string is iterable (by character), so
 * without this `reply.sse('hi')` would compile and then fail at run time.
 */
type NotAString = { readonly charAt?: never }

/** Something that produces content items, pulled one at a time as the client takes them. */
export type ContentSource<T extends ContentItem = ContentItem> =
  | AsyncIterable<T>
  | (Iterable<T> & NotAString)
  | ReadableStream<T>

/**
 * What a stream sends: a source, or a function that receives the {@link StreamContext} and
 * returns one (possibly after awaiting something, such as an authorisation check: if it throws,
 * the Node transports reject before the response head is sent, so a framework can answer with
 * its usual error response).
 */
export type Content<Req = unknown> =
  | ContentSource
  | ((ctx: StreamContext<Req>) => ContentSource | Promise<ContentSource>)

/**
 * Why a stream ended:
 * - `done` — the source finished, or the request was a `HEAD` (the head is the whole answer);
 * - `disconnect` — the client went away;
 * - `shutdown` — the stream's registry closed it (`closeAll`, a signal handler);
 * - `timeout` — the client did not keep up: a write could not be flushed within `sendTimeout`,
 *   or its broadcast subscription overflowed with `overflow: 'disconnect'` (connection dropped);
 * - `error` — the source, a hook or the serializer threw;
 * - `rejected` — the `limit` option's connection limit was reached: the client got `503` with
 *   `Retry-After` and the source never started; or a Broadcaster's `authorize` hook refused the
 *   subscription: the client got `401` or `403`;
 * - `maxDuration` — the stream reached its `maxDuration` and ended itself cleanly, after a
 *   `retry` hint: the client reconnects with `Last-Event-ID`.
 */
export type CloseReason =
  | 'done'
  | 'disconnect'
  | 'shutdown'
  | 'timeout'
  | 'error'
  | 'rejected'
  | 'maxDuration'

/** What a content function and a `dataSender` receive. */
export interface StreamContext<Req = unknown> {
  /**
   * Aborted the moment the stream stops wanting items: on client disconnect, shutdown, send
   * timeout, `maxDuration` or error. Its `reason` is the {@link CloseReason}. Pass it to anything slow you
   * await (`setTimeout` from `node:timers/promises`, `fetch`, a database query) so the source
   * stops at once instead of at its next `yield`.
   */
  readonly signal: AbortSignal
  /**
   * The `Last-Event-ID` request header, or the `lastEventId` query parameter that EventSource
   * polyfills send instead; `undefined` when neither is present.
   */
  readonly lastEventId: string | undefined
  /** The request: `IncomingMessage` on Node, the web `Request` on the web path (if given). */
  readonly request: Req
}

/** Headers as a record, a `Headers` object or a list of pairs. */
export type HeadersInput =
  | Record<string, string | number | readonly string[] | undefined>
  | Headers
  | ReadonlyArray<readonly [string, string]>

/** Options shared by {@link EventSourceResponse} and `sendEventStream`. */
export interface StreamOptions<Req = unknown> {
  /**
   * HTTP status of the response.
   * @defaultValue `200`
   */
  status?: number | undefined
  /**
   * Extra response headers. A `Cache-Control` you set replaces the default; the framing headers
   * (`Content-Type`, `Content-Length`, `Transfer-Encoding`, `Connection`, `X-Accel-Buffering`)
   * are Oven's, and values for them here are ignored.
   */
  headers?: HeadersInput | undefined
  /**
   * Send a keep-alive comment after this many milliseconds without any other write, so proxies
   * and load balancers do not close an idle stream. `0` or `false` disables it. A whole number
   * of ms, at least 1000 (`ping: 15` is sse-starlette's seconds, refused); tests go lower with
   * `shortDurations()` from `oven-sse/testing`.
   * @defaultValue `15000`
   */
  ping?: number | false | undefined
  /**
   * Builds each keep-alive message; may return any content item, synchronously (an async
   * function is refused; a returned Promise ends the stream through `onError`).
   * @defaultValue a comment `: ping - <ISO time>`
   */
  pingMessage?: (() => ContentItem) | undefined
  /**
   * Line separator: `"\r\n"`, `"\n"` or `"\r"`.
   * @defaultValue `"\r\n"`
   */
  sep?: Separator | undefined
  /**
   * End the stream (reason `timeout`) when a write cannot be flushed to the client for this
   * many milliseconds: a client that stopped reading is dropped instead of pinning memory. A
   * whole number of ms, at least 1000 (`0`: none); tests go lower with `shortDurations()`.
   * "Flushed" means the whole backlog reached the kernel, which takes more only once the client
   * has read a good part of the socket's send buffer: a reader that is slow enough is dropped
   * too (README, "Slow clients and backpressure").
   * @defaultValue none
   */
  sendTimeout?: number | undefined
  /**
   * End the stream cleanly (reason `maxDuration`) once it has lasted this many milliseconds,
   * counted from the response head: set it below your platform's limit on a response's
   * duration (Vercel, AWS Lambda), so the stream ends on your terms instead of being killed.
   * Before the end, everything already produced is sent, then a `retry` hint (the `retry`
   * option, or 1000 ms); the browser reconnects with `Last-Event-ID`, and a resumable source
   * (a Broadcaster subscription) carries on with no gap and no duplicate. `ctx.signal` aborts
   * with reason `maxDuration`. A whole number of ms, at least 1000 (`0`: no limit); tests go
   * lower with `shortDurations()`.
   * @defaultValue none
   */
  maxDuration?: number | undefined
  /**
   * A reconnection delay hint in milliseconds, sent once as the stream's first line (and again
   * before a `maxDuration` end): a whole number from 0 to 2147483647.
   * @defaultValue none
   */
  retry?: number | undefined
  /**
   * Turns non-string `data` into text.
   * @defaultValue `JSON.stringify`
   */
  serialize?: Serializer | undefined
  /**
   * A producer started beside the stream and aborted with it through `ctx.signal`; typically
   * it sends into a {@link Channel} that is the content. If it throws, the stream ends with
   * reason `error`.
   */
  dataSender?: ((ctx: StreamContext<Req>) => unknown) | undefined
  /** Called once, after the stream has ended, with the reason. */
  onClose?: ((reason: CloseReason) => void) | undefined
  /**
   * Receives an error thrown by the source, a hook, the ping factory or the serializer, and the
   * stream's request (as `ctx.request`: the framework's own request object in the adapters).
   * That stream ends (reason `error`); no error text is sent to the client.
   * @defaultValue logs with `console.error` (the Fastify plugin: the request's logger)
   */
  onError?: ((error: unknown, request: Req) => void) | undefined
  /**
   * The shutdown registry the stream joins.
   * @defaultValue {@link defaultRegistry}
   */
  registry?: StreamRegistry | undefined
  /**
   * On shutdown, how long (ms) the source may go on to send farewell events after
   * `ctx.signal` aborts with reason `shutdown`. Overrides the `grace` given to `closeAll`. A whole
   * number of ms (any, `0` for none).
   * @defaultValue the `grace` of `closeAll` (itself `0`)
   */
  shutdownGrace?: number | undefined
  /** Called when shutdown of this stream begins, before the grace period. */
  onShutdown?: (() => void) | undefined
  /**
   * A connection {@link Limiter} the stream takes a slot from before its head is sent: a
   * `ConnectionLimiter` (this process), or a `RedisConnectionLimiter` (all instances; not with
   * `new EventSourceResponse`, see {@link Limiter}). Past the limit the client gets `503` with
   * `Retry-After` and the stream ends with reason `rejected` without starting the source. The
   * slot is given back once, when the stream ends.
   * @defaultValue no limit
   */
  limit?: Limiter<Req> | undefined
}
