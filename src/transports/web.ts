/**
 * The web transport: an event stream as a standard `Response`, for Hono, Bun, Deno, Cloudflare
 * Workers, Next.js route handlers and `@hono/node-server`. Web-standard APIs only.
 *
 * @module
 */

import { invalidOption, SseError } from '../errors.ts'
import { REJECTION_BODY, rejectionHeaders } from '../limits/connection-limit.ts'
import { isPending, type Limiter } from '../limits/limiter.ts'
import { refusalBody, refusalHeaders } from '../limits/refusal.ts'
import { buildHeaders, readLastEventId } from '../stream/headers.ts'
import { type ResolvedOptions, resolveOptions } from '../stream/options.ts'
import { createPump, type Pump, type Sink } from '../stream/pump.ts'
import { checkContent } from '../stream/source.ts'
import type { CloseReason, Content, StreamOptions } from '../stream/types.ts'

/** Options of {@link EventSourceResponse}. */
export interface EventSourceResponseOptions extends StreamOptions<Request | undefined> {
  /**
   * The incoming request. Its `signal` ends the stream when the client goes away (some
   * runtimes report that only there), and its `Last-Event-ID` header (or `lastEventId` query
   * parameter) becomes `ctx.lastEventId`.
   */
  request?: Request | undefined
}

const encoder = new TextEncoder()

/**
 * The default `ping` under Bun. `Bun.serve` closes a connection that has not been written to
 * for `idleTimeout` seconds (default 10), and checks on a 4-second tick, so a connection can
 * be cut 8 s after its last write (measured with Bun 1.4: a silent stream is cut at 12 s).
 * Oven's general default (15 s) would lose every quiet stream; 4 s keeps one open under Bun's
 * defaults with 4 s to spare. A `ping` you pass is used as it is.
 */
const BUN_PING = 4000

/** Whether this is Bun: its global is the one reliable sign (it also serves node:http). */
const onBun = typeof (globalThis as { Bun?: unknown }).Bun === 'object'

/** Where a {@link WebSink} is in its life. */
const Phase = {
  /** Made: the body has not been read yet, and the pump has not started. */
  Unread: 0,
  /** Streaming: the pump writes into the body. */
  Open: 1,
  /** The body was closed, errored or cancelled: nothing more goes into it. */
  Closed: 2,
} as const
type Phase = (typeof Phase)[keyof typeof Phase]

/**
 * The pump's {@link Sink} over a pull-based `ReadableStream` body. With a high-water mark of 0
 * the stream asks for data only when the server reads, so the source is pulled no faster than
 * the client takes events — and a response that is never sent never starts its source.
 *
 * It learns that the client went away from the body's `cancel()` and from the request's
 * `signal` (some runtimes report it only there), whichever comes first. The sink itself is the
 * signal's listener (`handleEvent`), and it stops listening when the body closes. Measured with
 * 3 000 idle streams on `@hono/node-server` (heap per connection), an arrow-function field as
 * the listener and a `closed.then(...)` to remove it cost 0.49 KiB per stream: the arrow's
 * `name` (a private field's, set at run time) alone turned its properties into a 256-byte
 * dictionary, and the `then` kept a closure, a context and two promise objects.
 */
class WebSink implements Sink, UnderlyingDefaultSource<Uint8Array>, EventListenerObject {
  readonly #pump: Pump<Request | undefined>
  /** Read once, at the first pull, for its signal. */
  readonly #request: Request | undefined
  #controller!: ReadableStreamDefaultController<Uint8Array>
  /** The request's signal while the sink listens to it. */
  #signal: AbortSignal | undefined = undefined
  #phase: Phase = Phase.Unread

  constructor(pump: Pump<Request | undefined>, request: Request | undefined) {
    this.#pump = pump
    this.#request = request
  }

  start(controller: ReadableStreamDefaultController<Uint8Array>): void {
    this.#controller = controller
  }

  pull(): void {
    if (this.#phase !== Phase.Unread) {
      this.#pump.drained()
      return
    }
    this.#phase = Phase.Open
    const signal = this.#request?.signal
    if (signal?.aborted) {
      this.#gone()
      return
    }
    this.#pump.start(this)
    // Listens from here on, unless the stream ended meanwhile (nothing would remove the
    // listener), or the request aborted while the pump started (user code ran).
    if (!signal || this.#phase !== Phase.Open || this.#pump.ended) return
    if (signal.aborted) {
      this.#gone()
      return
    }
    this.#signal = signal
    signal.addEventListener('abort', this)
  }

  cancel(): void {
    this.#gone()
  }

  /** The request's signal aborted. */
  handleEvent(): void {
    this.#gone()
  }

  write(chunk: string | Uint8Array, shared: boolean): boolean {
    if (this.#phase !== Phase.Open) return false
    // A shared event's bytes are copied: the body's reader may keep, change or transfer them.
    const bytes = typeof chunk === 'string' ? encoder.encode(chunk) : shared ? chunk.slice() : chunk
    this.#controller.enqueue(bytes)
    return (this.#controller.desiredSize ?? 0) > 0
  }

  end(): void {
    if (this.#phase !== Phase.Open) return
    this.#close()
    this.#controller.close()
  }

  destroy(): void {
    if (this.#phase !== Phase.Open) return
    this.#close()
    this.#controller.error(new Error('oven-sse: stream dropped without a clean end (send timeout)'))
  }

  /** The client went away. */
  #gone(): void {
    this.#close()
    this.#pump.disconnect()
  }

  /** Nothing more goes into the body; stops listening to the request's signal. */
  #close(): void {
    this.#phase = Phase.Closed
    const signal = this.#signal
    if (signal === undefined) return
    this.#signal = undefined
    signal.removeEventListener('abort', this)
  }
}

/**
 * A web-standard `Response` whose body streams `content` as Server-Sent Events.
 *
 * Return it from any handler that speaks `Request`/`Response`. Pass the incoming request as
 * `options.request` so a client disconnect stops the source at once and a reconnecting client's
 * `Last-Event-ID` reaches `ctx.lastEventId`.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { EventSourceResponse } from 'oven-sse'
 *
 * const app = new Hono()
 * app.get('/events', (c) =>
 *   new EventSourceResponse(
 *     async function* ({ signal }) {
 *       for (let i = 0; i < 10 && !signal.aborted; i++) {
 *         yield { data: `Event ${i}` }
 *         await new Promise((resolve) => setTimeout(resolve, 1000))
 *       }
 *     },
 *     { request: c.req.raw },
 *   ),
 * )
 * ```
 */
export class EventSourceResponse extends Response {
  /** Settles with the {@link CloseReason} once the stream has ended. */
  readonly closed: Promise<CloseReason>

  /**
   * @param content - a source, or `(ctx) => source`; see {@link Content}.
   * @param options - see {@link EventSourceResponseOptions}.
   * @throws {@link SseError} at once for invalid options or content.
   */
  constructor(content: Content<Request | undefined>, options?: EventSourceResponseOptions)
  /**
   * The response of a stream `openEventSourceResponse` made and opened first, or of one another
   * transport has sent already.
   *
   * @internal
   */
  constructor(stream: PreparedStream | SentStream)
  constructor(
    content: Content<Request | undefined> | PreparedStream | SentStream,
    options?: EventSourceResponseOptions,
  ) {
    const stream =
      content instanceof PreparedStream || content instanceof SentStream
        ? content
        : PreparedStream.make(content, options)
    const { body, init } = stream.answer()
    super(body, init)
    this.closed = stream.closed
  }
}

/**
 * A web stream made before its `Response`: checked options, the pump and its `closed`
 * promise. The one path of both entry points: {@link EventSourceResponse} makes one for itself;
 * `openEventSourceResponse` makes one, opens its content, then passes it to the constructor's
 * internal overload. Either way {@link PreparedStream.answer} decides what the response carries.
 *
 * @internal
 */
export class PreparedStream {
  /**
   * Whether the limit was judged before the response (`openEventSourceResponse` waited for an
   * asynchronous limiter, and gave the slot to the pump): then {@link PreparedStream.answer}
   * does not ask the limiter again.
   */
  admitted: boolean | undefined = undefined
  /**
   * Set when the content function was refused by an `authorize` hook (see
   * `openEventSourceResponse`): the response is that `401` or `403`.
   */
  refused: 401 | 403 | undefined

  private constructor(
    readonly pump: Pump<Request | undefined>,
    readonly closed: Promise<CloseReason>,
    readonly options: ResolvedOptions<Request | undefined>,
    readonly request: Request | undefined,
  ) {}

  /** Checks `content` and `options` (throwing `SseError`), and makes the pump. */
  static make(
    content: Content<Request | undefined>,
    options: EventSourceResponseOptions | undefined,
  ): PreparedStream {
    const runtimeDefaults =
      onBun && options?.ping === undefined ? { ...options, ping: BUN_PING } : options
    const resolved = resolveOptions(runtimeDefaults, ['request'])
    checkContent(content)
    const request = options?.request
    if (
      request !== undefined &&
      !(typeof request === 'object' && request && 'headers' in request)
    ) {
      invalidOption('request', 'a Request', request)
    }
    const lastEventId = request
      ? readLastEventId(request.headers.get('last-event-id'), request.url)
      : undefined
    const [pump, closed] = createPump<Request | undefined>({
      content,
      options: resolved,
      request,
      lastEventId,
    })
    return new PreparedStream(pump, closed, resolved, request)
  }

  /**
   * What the response carries: the stream's head and body; an empty body when the stream has
   * ended already (its client left while `openEventSourceResponse` ran the content function) or
   * the request is a `HEAD` (the stream then ends with reason `done`); or, past the connection
   * limit, the limiter's 503.
   *
   * A connection limit is checked here, as the response is made, because a `Response`'s status
   * is fixed by its constructor: past the limit the same class carries the 503, so every handler
   * and adapter keeps one code path (`return new EventSourceResponse(...)`).
   *
   * @throws what the limiter's key function threw; the stream has then ended with `error`, and
   *   the server's (or framework's) error handling answers.
   */
  answer(): { body: ReadableStream<Uint8Array> | string | null; init: ResponseInit } {
    const { pump, options, request } = this
    const headers = buildHeaders(options.headers, false)
    const head = { status: options.status, headers }
    const refused = this.refused
    if (refused !== undefined) {
      return {
        body: refusalBody(refused),
        init: { status: refused, headers: refusalHeaders(refused, headers) },
      }
    }
    if (pump.ended) return { body: null, init: head }
    const limiter = options.limit
    if (limiter && !(this.admitted ?? this.#admit(limiter))) {
      // Stops a source already opened (by `openEventSourceResponse`): nothing will read it.
      pump.close('rejected')
      const rejected = { status: 503, headers: rejectionHeaders(limiter.retryAfterHeader, headers) }
      return { body: REJECTION_BODY, init: rejected }
    }
    if (request?.method === 'HEAD') {
      // The head is the whole answer (a health check, `curl -I`), and a server may never read
      // or cancel the body of a HEAD response: the stream ends here, its source never pulled.
      pump.close('done')
      return { body: null, init: head }
    }
    const sink = new WebSink(pump, request)
    return { body: new ReadableStream<Uint8Array>(sink, { highWaterMark: 0 }), init: head }
  }

  /** Takes a slot now, for the pump to give back when it ends; `false` past the limit. */
  #admit(limiter: Limiter<Request | undefined>): boolean {
    let admission: ReturnType<typeof limiter.acquire>
    try {
      admission = limiter.acquire(this.request)
    } catch (error) {
      this.pump.close('error')
      throw error
    }
    if (isPending(admission)) {
      // A slot it may still grant goes back at once: nothing will hold it.
      admission.then(
        (release) => release?.(),
        () => {},
      )
      this.pump.close('error')
      throw new SseError(
        'ERR_SSE_INVALID_OPTION',
        'Invalid option "limit": this limiter answers asynchronously (a RedisConnectionLimiter), ' +
          'and new EventSourceResponse(...) must fix its status at once. Use ' +
          '`await openEventSourceResponse(content, options)` instead, or an adapter ' +
          '(oven-sse/hono, oven-sse/h3, oven-sse/elysia), which wait for the limiter.',
      )
    }
    if (!admission) return false
    this.pump.releaseOnEnd(admission)
    return true
  }
}

/**
 * A stream another transport is sending: Oven's Hono helper on `@hono/node-server` writes it to
 * the Node response itself. Its response has no body — only the status sent, the headers that
 * tell the server the answer is out, and the stream's `closed`.
 *
 * @internal
 */
export class SentStream {
  constructor(
    readonly closed: Promise<CloseReason>,
    readonly init: ResponseInit,
  ) {}

  answer(): { body: null; init: ResponseInit } {
    return { body: null, init: this.init }
  }
}
