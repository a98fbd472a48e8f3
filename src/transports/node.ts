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
import { type Admission, isPending, type ReleaseSlot } from '../limits/limiter.ts'
import { refusalBody, refusalHeaders, refusalStatus } from '../limits/refusal.ts'
import {
  buildHeaders,
  closesConnection,
  isFramingHeader,
  readLastEventId,
} from '../stream/headers.ts'
import { type ResolvedOptions, resolveOptions } from '../stream/options.ts'
import { createPump, type Pump, type Sink } from '../stream/pump.ts'
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

// The pump a response streams for, reached from the response by the listeners below. They are
// shared functions (`this` is the response) rather than closures made per stream: measured
// (bench, 10 000 idle streams) two closures per stream were ~0.1 KiB of heap each stream.
const PUMP = Symbol('oven-sse.pump')
type Tagged = NodeResponse & { [PUMP]?: StreamEnds | undefined }

/** What the response's listeners tell the pump. */
interface StreamEnds {
  disconnect(): void
  drained(): void
}

function onResponseDrain(this: Tagged): void {
  this.off('drain', onResponseDrain)
  this[PUMP]?.drained()
}

// 'close' comes after a normal end too; the pump ignores it once the stream has ended.
function onResponseClose(this: Tagged): void {
  const pump = this[PUMP]
  detach(this)
  pump?.disconnect()
}

/** Removes the listeners: the stream has ended and the response closed, or never started. */
function detach(res: Tagged): void {
  res.off('drain', onResponseDrain)
  res.off('close', onResponseClose)
  res[PUMP] = undefined
}

/**
 * The pump's {@link Sink} over a Node response: a 'close' listener for the stream's whole life,
 * a 'drain' listener while a write waits. The response itself points to the pump.
 */
class NodeSink implements Sink {
  readonly #res: Tagged

  constructor(res: NodeResponse, pump: StreamEnds) {
    this.#res = res
    this.#res[PUMP] = pump
    res.on('close', onResponseClose)
  }

  write(chunk: string | Uint8Array): boolean {
    const res = this.#res
    const ok = (res as ServerResponse).write(chunk)
    // Compression middleware holds output until flushed; flushing after each write keeps every
    // event moving without delay even when a caller replaced `Cache-Control: no-transform`.
    const flush = (res as Flushable).flush
    if (typeof flush === 'function') flush.call(res)
    if (!ok) {
      // Once, however many writes wait: the pump is told when the response drains.
      res.off('drain', onResponseDrain)
      res.on('drain', onResponseDrain)
    }
    return ok
  }

  end(): void {
    this.#res.end()
  }

  destroy(): void {
    this.#res.destroy()
  }

  /** The stream never started (its content function failed): nothing listens any more. */
  detach(): void {
    detach(this.#res)
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
  return streamResponse(req, res, content, resolveOptions(options), req)
}

/**
 * A caller of {@link streamResponse} that waits for the head and answers a failure itself (Oven's
 * Hono helper on `@hono/node-server`, whose promise must reject so that `app.onError` answers).
 *
 * @internal
 */
export interface HeadWatcher {
  /**
   * Called once the head is out, or once it is certain none will be (the request was answered
   * without a stream: a `503` past the connection limit, an empty end after a shutdown, or the
   * client had gone). A failure before the head is not reported here: `closed` rejects, and no
   * fallback `500` is sent — the caller answers.
   */
  headDone(): void
}

/**
 * `sendEventStream` for the framework adapters: options already resolved (an adapter resolves
 * its defaults once, and streams share them), and `request` the framework's own request
 * object, which the source sees as `ctx.request`, the `limit` is asked with, and `onError`
 * receives. A `watcher` learns when the head is out (see {@link HeadWatcher}).
 *
 * @internal
 */
export function streamResponse<Req>(
  req: NodeRequest,
  res: NodeResponse,
  content: Content<Req>,
  options: ResolvedOptions<Req>,
  request: Req,
  watcher?: HeadWatcher,
): Promise<CloseReason> {
  checkContent(content)
  if (res.headersSent) {
    throw new SseError(
      'ERR_SSE_HEADERS_SENT',
      'sendEventStream: the response head was already sent; an event stream needs a fresh response.',
    )
  }
  const lastEventId = readLastEventId(header(req, 'last-event-id'), req.url)
  const [pump, closed] = createPump<Req>({ content, options, request, lastEventId })
  const limiter = options.limit
  if (limiter) {
    let admission: Admission | PromiseLike<Admission>
    try {
      admission = limiter.acquire(request)
    } catch (error) {
      // The limiter's key function failed (a header missing): this request fails, not the
      // process, and nothing was sent.
      failBeforeHead(pump, closed, res, error, watcher)
      return closed
    }
    if (isPending(admission)) {
      admitLater(admission, pump, closed, req, res, options, limiter.retryAfterHeader, watcher)
      return closed
    }
    if (!admission) {
      reject(pump, req, res, options, limiter.retryAfterHeader)
      watcher?.headDone()
      return closed
    }
    // Every path ends the pump (even a client gone while the content function ran): the slot
    // is given back exactly once, whatever the reason.
    pump.releaseOnEnd(admission)
  }
  begin(pump, closed, req, res, options, watcher)
  return closed
}

/** Opens the stream's content, then sends the head and starts the pump: see `sendHead`. */
function begin<Req>(
  pump: Pump<Req>,
  closed: Promise<CloseReason>,
  req: NodeRequest,
  res: NodeResponse,
  options: ResolvedOptions<Req>,
  watcher: HeadWatcher | undefined,
): void {
  const sink = new NodeSink(res, pump)
  // The client may be gone already (its 'close' came before this call): never wait for it.
  if (res.destroyed || (res as Http2ServerResponse).stream?.destroyed) pump.disconnect()
  // A server being closed waits for its open requests: a stream begun now would hold it open.
  else if (serverClosed(req)) pump.close('shutdown')
  // The promise returned is the one the pump settles: no wrapper is kept for the stream's life.
  pump.open().then(
    () => {
      if (sendHead(pump, sink, req, res, options)) watcher?.headDone()
    },
    (error: unknown) => {
      sink.detach()
      if (pump.ended) {
        // Shut down while the content function ran: reported unless it is the abort itself.
        pump.failOpen(error)
        endUnstarted(req, res, options)
        watcher?.headDone()
      } else {
        const status = refusalStatus(error)
        if (status === undefined) {
          failBeforeHead(pump, closed, res, error, watcher)
        } else {
          refuse(pump, req, res, options, status)
          watcher?.headDone()
        }
      }
    },
  )
}

/**
 * A limiter that answers later (Redis): the stream begins once it has. A client that leaves
 * meanwhile ends the stream, and a slot that arrives after that is given back at once.
 */
function admitLater<Req>(
  admission: PromiseLike<Admission>,
  pump: Pump<Req>,
  closed: Promise<CloseReason>,
  req: NodeRequest,
  res: NodeResponse,
  options: ResolvedOptions<Req>,
  retryAfter: string,
  watcher: HeadWatcher | undefined,
): void {
  const gone = () => pump.disconnect()
  res.once('close', gone)
  admission.then(
    (release: ReleaseSlot | undefined) => {
      res.off('close', gone)
      // At once if the stream has ended meanwhile.
      if (release) pump.releaseOnEnd(release)
      if (pump.ended) {
        // The client left while the limiter answered: no head will be sent.
        watcher?.headDone()
        return
      }
      if (release) {
        begin(pump, closed, req, res, options, watcher)
      } else {
        reject(pump, req, res, options, retryAfter)
        watcher?.headDone()
      }
    },
    (error: unknown) => {
      res.off('close', gone)
      if (!pump.ended) failBeforeHead(pump, closed, res, error, watcher)
      else watcher?.headDone()
    },
  )
}

/**
 * Whether the request came in on a server that has stopped listening (`server.close()` was
 * called). `socket.server` is the `node:http` / `node:http2` server that accepted the
 * connection; a request without one (a test double) counts as open.
 */
function serverClosed(req: NodeRequest): boolean {
  const server = (req.socket as { server?: { listening?: unknown } } | undefined)?.server
  return server?.listening === false
}

/** How long a request whose stream failed before its head may wait for the caller's answer. */
const UNANSWERED_AFTER = 1000

/**
 * A user callback failed before the head (the content function, the limiter's key): `closed`
 * rejects, so the caller's framework answers with its error response. A caller that answers
 * nothing (plain `node:http` without a `.catch`, Express 4) must neither crash the process with
 * an unhandled rejection nor leave the request hanging: a request still unanswered after
 * {@link UNANSWERED_AFTER} gets a `500`, and the error goes to `onError`. The wait leaves room
 * for error handlers that answer asynchronously (an Express or Fastify error handler that
 * awaits a log call first). A {@link HeadWatcher}'s caller always answers: no fallback then.
 */
function failBeforeHead<Req>(
  pump: Pump<Req>,
  closed: Promise<CloseReason>,
  res: NodeResponse,
  error: unknown,
  watcher: HeadWatcher | undefined,
): void {
  pump.failOpen(error)
  closed.catch(() => {})
  if (watcher) return
  setTimeout(() => {
    if (res.headersSent || res.writableEnded || res.destroyed) return
    pump.report(error)
    ;(res as ServerResponse).writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' })
    res.end('Internal Server Error\n')
  }, UNANSWERED_AFTER)
}

/**
 * The stream ended before its head was sent (a shutdown while the content function ran): the
 * client still gets a complete answer — the stream's head and a clean end, after which an
 * `EventSource` reconnects, to another instance — so `server.close()` is not kept waiting.
 */
function endUnstarted(
  req: NodeRequest,
  res: NodeResponse,
  options: { status: number; headers: StreamOptions['headers'] },
): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return
  ;(res as ServerResponse).writeHead(
    options.status,
    toNodeHeaders(headFor(req, res, options.headers)),
  )
  res.end()
}

/** Past a connection limit: 503 with `Retry-After`; the source is never started. */
function reject<Req>(
  pump: Pump<Req>,
  req: NodeRequest,
  res: NodeResponse,
  options: { headers: StreamOptions['headers'] },
  retryAfter: string,
): void {
  const head = rejectionHeaders(retryAfter, headFor(req, res, options.headers))
  ;(res as ServerResponse).writeHead(503, toNodeHeaders(head))
  res.end(REJECTION_BODY)
  pump.close('rejected')
}

/** Refused by an `authorize` hook: `401` or `403` and a short body; nothing else is sent. */
function refuse<Req>(
  pump: Pump<Req>,
  req: NodeRequest,
  res: NodeResponse,
  options: { headers: StreamOptions['headers'] },
  status: 401 | 403,
): void {
  pump.close('rejected')
  if (res.headersSent || res.writableEnded || res.destroyed) return
  const head = refusalHeaders(status, headFor(req, res, options.headers))
  ;(res as ServerResponse).writeHead(status, toNodeHeaders(head))
  res.end(refusalBody(status))
}

/**
 * The content is ready: sends the head and starts the pump (unless the client went away). A
 * `HEAD` request gets the head and an ended response; its stream ends with reason `done`.
 * Returns `false` when the head could not be sent (the stream then failed: `closed` rejects).
 */
function sendHead<Req>(
  pump: Pump<Req>,
  sink: NodeSink,
  req: NodeRequest,
  res: NodeResponse,
  options: { status: number; headers: StreamOptions['headers'] },
): boolean {
  if (pump.ended) {
    sink.detach()
    endUnstarted(req, res, options)
    return true
  }
  try {
    const head = toNodeHeaders(headFor(req, res, options.headers))
    ;(res as ServerResponse).writeHead(options.status, head)
    ;(res as ServerResponse).flushHeaders()
  } catch (error) {
    // Something else sent the head while the content function ran: nothing was streamed.
    sink.detach()
    pump.failOpen(error)
    return false
  }
  if (req.method === 'HEAD') {
    // The head is the whole answer (a health check, `curl -I`): end the response, or the source
    // would run with every write discarded and hold the connection for as long as it stays open.
    sink.detach()
    res.end()
    pump.close('done')
    return true
  }
  pump.start(sink)
  return true
}

/**
 * The head for `res`, given what is already set on it. A header a middleware set with
 * `res.setHeader()` (Express `res.set()`, Koa `ctx.set()`) stays — `writeHead` merges it, and
 * a `Cache-Control` there replaces Oven's default — unless the `headers` option names it too
 * (the option wins) or it is a framing header, which is removed: the stream's framing is
 * Oven's. `Connection` is `close` when the client asked for it, spoke HTTP/1.0, or the server
 * already decided to close (RFC 9112 §9.6); otherwise `keep-alive`, on HTTP/1.x only.
 */
function headFor(
  req: NodeRequest,
  res: NodeResponse,
  headers: StreamOptions['headers'],
): Array<[string, string]> {
  const http1 = req.httpVersionMajor < 2
  const out = res as ServerResponse
  let close = false
  if (http1) {
    const preset = out.getHeader('connection')
    close =
      closesConnection(req.httpVersionMajor, req.httpVersionMinor, req.headers.connection) ||
      out.shouldKeepAlive === false ||
      (preset !== undefined && closesConnection(1, 1, String(preset)))
  }
  const cacheControlSet = out.hasHeader('cache-control')
  for (const name of out.getHeaderNames()) {
    if (isFramingHeader(name)) out.removeHeader(name)
  }
  return buildHeaders(headers, http1, { close, cacheControlSet })
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
