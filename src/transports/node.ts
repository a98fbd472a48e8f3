/**
 * The Node transport: an event stream on a `node:http` `ServerResponse` or a `node:http2`
 * compatibility `Http2ServerResponse` — and so on Express and Koa, which hand you those.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { SseError } from '../errors.ts'
import { REJECTION_BODY, rejectionHeaders } from '../limits/connection-limit.ts'
import { buildHeaders, readLastEventId } from '../stream/headers.ts'
import { resolveOptions } from '../stream/options.ts'
import { Pump, type Sink } from '../stream/pump.ts'
import { checkContent } from '../stream/source.ts'
import type { CloseReason, Content, StreamOptions } from '../stream/types.ts'

/** A request `sendEventStream` accepts. */
export type NodeRequest = IncomingMessage | Http2ServerRequest
/** A response `sendEventStream` accepts. */
export type NodeResponse = ServerResponse | Http2ServerResponse

/** A response that compression middleware (Express `compression`) gave a `flush()`. */
interface Flushable {
  flush?: () => void
}

// The sink a response streams for, reached from the response by the two listeners below. They
// are shared functions (`this` is the response) rather than closures made per stream: measured
// (bench, 10 000 idle streams) two closures per stream were ~0.1 KiB of heap each stream.
const SINK = Symbol('oven-sse.sink')
type Tagged = NodeResponse & { [SINK]?: NodeSink | undefined }

function onResponseDrain(this: Tagged): void {
  this.off('drain', onResponseDrain)
  this[SINK]?.drained()
}

// 'close' comes after a normal end too; the pump ignores it once the stream has ended.
function onResponseClose(this: Tagged): void {
  this[SINK]?.gone()
}

/**
 * The pump's {@link Sink} over a Node response: a 'close' listener for the stream's whole life,
 * a 'drain' listener while a write waits.
 */
class NodeSink implements Sink {
  readonly #res: Tagged
  // The pump itself rather than closures over it: measured (bench, heap snapshots of idle
  // streams) a closure kept sendEventStream's whole scope alive per stream.
  readonly #pump: { disconnect(): void; drained(): void }
  // Compression middleware holds output until flushed; flushing after each write keeps every
  // event moving without delay even when a caller replaced `Cache-Control: no-transform`.
  readonly #flush: (() => void) | undefined
  /** Listening for 'drain': only while a write waits, so an idle response has one listener. */
  #draining = false

  constructor(res: NodeResponse, pump: { disconnect(): void; drained(): void }) {
    this.#res = res
    this.#pump = pump
    const flush = (res as Flushable).flush
    this.#flush = typeof flush === 'function' ? flush.bind(res) : undefined
    this.#res[SINK] = this
    res.on('close', onResponseClose)
  }

  write(chunk: string | Uint8Array): boolean {
    const ok = (this.#res as ServerResponse).write(chunk)
    this.#flush?.()
    if (!ok && !this.#draining) {
      this.#draining = true
      this.#res.on('drain', onResponseDrain)
    }
    return ok
  }

  end(): void {
    this.#res.end()
  }

  destroy(): void {
    this.#res.destroy()
  }

  /** Removes the listeners once the stream has ended and the response closed. */
  detach(): void {
    this.#res.off('drain', onResponseDrain)
    this.#res.off('close', onResponseClose)
    this.#res[SINK] = undefined
  }

  /** The response drained: the pump may write again. */
  drained(): void {
    this.#draining = false
    this.#pump.drained()
  }

  /** The response closed: the client is gone (or the stream ended). */
  gone(): void {
    this.#pump.disconnect()
    this.detach()
  }
}

/**
 * Streams `content` as Server-Sent Events on a Node response: `node:http`, the `node:http2`
 * compatibility API, Express and Koa (`ctx.req`, `ctx.res` — or use `oven-sse/koa`).
 *
 * The head (status and headers) is sent as soon as the content is resolved, before the first
 * item is produced. If `content` is a function and it throws (or its promise rejects), the
 * returned promise rejects *before* anything is sent, so the framework can send its normal
 * error response; errors later, while streaming, end the stream cleanly and reach `onError`.
 *
 * @param req - the incoming request: gives `ctx.lastEventId` and `ctx.request`.
 * @param res - the response to stream on; its head must not have been sent.
 * @param content - a source, or `(ctx) => source`; see {@link Content}.
 * @param options - see {@link StreamOptions}.
 * @returns settles with the {@link CloseReason} once the stream has ended.
 * @throws {@link SseError} at once for invalid options or content, or a head already sent.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * import { setTimeout as sleep } from 'node:timers/promises'
 * import { sendEventStream } from 'oven-sse/node'
 *
 * createServer((req, res) => {
 *   sendEventStream(req, res, async function* ({ signal }) {
 *     for (let i = 0; i < 10; i++) {
 *       yield { data: `Event ${i}` }
 *       await sleep(1000, undefined, { signal })
 *     }
 *   })
 * }).listen(8000)
 * ```
 */
export function sendEventStream<Req extends NodeRequest>(
  req: Req,
  res: NodeResponse,
  content: Content<Req>,
  options?: StreamOptions<Req>,
): Promise<CloseReason> {
  const resolved = resolveOptions(options)
  checkContent(content)
  if (res.headersSent) {
    throw new SseError(
      'ERR_SSE_HEADERS_SENT',
      'sendEventStream: the response head was already sent; an event stream needs a fresh response.',
    )
  }
  const lastEventId = readLastEventId(header(req, 'last-event-id'), req.url)
  const pump = new Pump<Req>({ content, options: resolved, request: req, lastEventId })
  const limiter = resolved.limit
  if (limiter) {
    const release = limiter.acquire(req)
    if (!release) return reject(pump, req, res, resolved, limiter.retryAfterHeader)
    // Every path ends the pump (even a client gone while the content function ran): the slot
    // is given back exactly once, whatever the reason.
    pump.closed.then(release, release)
  }
  const sink = new NodeSink(res, pump)
  // The client may be gone already (its 'close' came before this call): never wait for it.
  if (res.destroyed || (res as Http2ServerResponse).stream?.destroyed) pump.disconnect()
  // The promise returned is the pump's own `closed`: no wrapper is kept for the stream's life.
  pump.open().then(
    () => sendHead(pump, sink, req, res, resolved),
    (error: unknown) => {
      sink.detach()
      pump.failOpen(error)
    },
  )
  return pump.closed
}

/** Past a connection limit: 503 with `Retry-After`; the source is never started. */
function reject<Req extends NodeRequest>(
  pump: Pump<Req>,
  req: Req,
  res: NodeResponse,
  options: { headers: StreamOptions['headers'] },
  retryAfter: string,
): Promise<CloseReason> {
  const head = rejectionHeaders(retryAfter, buildHeaders(options.headers, req.httpVersionMajor < 2))
  ;(res as ServerResponse).writeHead(503, toNodeHeaders(head))
  res.end(REJECTION_BODY)
  pump.close('rejected')
  return pump.closed
}

/** The content is ready: sends the head and starts the pump (unless the client went away). */
function sendHead<Req extends NodeRequest>(
  pump: Pump<Req>,
  sink: NodeSink,
  req: Req,
  res: NodeResponse,
  options: { status: number; headers: StreamOptions['headers'] },
): void {
  if (pump.ended) return
  try {
    const http1 = req.httpVersionMajor < 2
    const head = toNodeHeaders(buildHeaders(options.headers, http1))
    ;(res as ServerResponse).writeHead(options.status, head)
    ;(res as ServerResponse).flushHeaders()
  } catch (error) {
    // Something else sent the head while the content function ran: nothing was streamed.
    sink.detach()
    pump.failOpen(error)
    return
  }
  pump.start(sink)
}

function header(req: NodeRequest, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

/** Pairs to the object `writeHead` takes, keeping repeated names as arrays. */
function toNodeHeaders(pairs: Array<[string, string]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of pairs) {
    const existing = out[name]
    if (existing === undefined) out[name] = value
    else if (Array.isArray(existing)) existing.push(value)
    else out[name] = [existing, value]
  }
  return out
}
