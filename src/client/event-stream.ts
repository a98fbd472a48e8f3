/**
 * The client's stream: the reconnect loop, the position, and the two ways events come out
 * (callbacks and an async iterator).
 *
 * The stream's life is one small state machine, moved in one place (`#run`) except for the
 * final step, which anything may take through `#close`:
 *
 * ```
 * connecting ──▶ open ──▶ waiting ──▶ connecting …        (a failure that is retried)
 *      └───────────┴─────────┴──────▶ closed              (for good: see ClientCloseReason)
 * ```
 *
 * Events are delivered in the order they were parsed, each exactly once per connection. Across
 * connections the server decides (it resumes after `Last-Event-ID`); the client only makes sure
 * that the id it sends is the id of the last *complete* event it delivered.
 *
 * @module
 */

import type { EventSourceMessage } from 'eventsource-parser'
import { describe, invalidOption, SseError } from '../errors.ts'
import { MAX_DELAY } from '../util/delay.ts'
import { Deque } from '../util/deque.ts'
import { backoffDelay, retryAfterDelay } from './backoff.ts'
import { type AttemptFailure, type AttemptHost, runAttempt } from './connection.ts'
import { type ClientSettings, type ConnectOptions, resolveClientOptions } from './options.ts'
import type {
  ClientCloseInfo,
  ClientCloseReason,
  ClientEvent,
  ClientState,
  ConnectFailure,
} from './types.ts'

/**
 * How many events the async iterator may hold before the client stops reading the connection
 * (and TCP makes the server wait): enough to smooth bursts, small enough that a slow reader
 * never makes the client hold a large backlog.
 */
const HIGH_WATER = 64

/** Statuses worth retrying: the server is overloaded, restarting, or a proxy timed out. */
function retryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429
}

/**
 * Turns a parsed event into the delivered one: as it is, or (with a contract) with its data
 * parsed and validated — possibly asynchronously, for an async schema. A throw or a rejection
 * ends the stream with that error.
 *
 * @internal
 */
export type EventMapper<E extends ClientEvent<unknown>> = (event: ClientEvent) => E | Promise<E>

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

/**
 * A server-sent event stream read with `fetch`: reconnects by itself (resuming from the last
 * event id), and ends for good only when told to. Create it with {@link connect}.
 *
 * Events come out two ways, both in order: the callbacks of the options (`onEvent`, `on`), and
 * the async iterator (`for await`). When no callback is given, events wait for the iterator
 * from the start; otherwise the iterator sees the events from when it starts. One iterator at a
 * time; leaving the loop (`break`, `return`, a throw) closes the stream.
 */
export class EventStream<E extends ClientEvent<unknown> = ClientEvent> implements AsyncIterable<E> {
  /**
   * Resolves once the stream has ended for good, with the reason and, for `'error'`, the
   * failure. It never rejects, so an unobserved failure is never an unhandled rejection.
   */
  readonly closed: Promise<ClientCloseInfo>

  readonly #settings: ClientSettings<E>
  readonly #map: EventMapper<E>
  readonly #stop = new AbortController()
  #state: ClientState = 'connecting'
  #lastEventId: string
  /**
   * The position as parsed, which runs ahead of {@link #lastEventId} (the position delivered)
   * only while events wait for an async schema.
   */
  #parsedId: string
  /** Settles when the events waiting for an async schema are delivered; `undefined`: none wait. */
  #pending: Promise<void> | undefined
  /** The server's `retry:`, which replaces `retryDelay` as the base of the backoff. */
  #serverRetry: number | undefined
  #closeInfo: ClientCloseInfo | undefined
  #resolveClosed!: (info: ClientCloseInfo) => void
  /** Events for the iterator; `undefined` while nobody iterates and callbacks are given. */
  #queue: Deque<E> | undefined
  #iterating = false
  /** Wakes an iterator waiting for an event or for the end. */
  #wakeReader: (() => void) | undefined
  /** Wakes the loop waiting for the iterator to take events. */
  #wakeLoop: (() => void) | undefined
  readonly #userSignal: AbortSignal | undefined
  readonly #onUserAbort = () => this.#close({ reason: 'aborted' })

  /** @internal Use {@link connect}. */
  constructor(url: string | URL, options: ConnectOptions<E>, map: EventMapper<E>) {
    this.#settings = resolveClientOptions(url, options)
    this.#map = map
    this.#lastEventId = this.#settings.lastEventId
    this.#parsedId = this.#lastEventId
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve
    })
    const { onEvent, on } = this.#settings
    if (!onEvent && Object.keys(on).length === 0) this.#queue = new Deque()
    this.#userSignal = this.#settings.signal
    if (this.#userSignal?.aborted) {
      this.#close({ reason: 'aborted' })
      return
    }
    this.#userSignal?.addEventListener('abort', this.#onUserAbort, { once: true })
    void this.#run()
  }

  /**
   * Where the connection is: `'connecting'`, `'open'`, `'waiting'` (to reconnect) or
   * `'closed'` (for good).
   */
  get state(): ClientState {
    return this.#state
  }

  /**
   * The position: the id of the last event delivered (or the last id set), sent as
   * `Last-Event-ID` on the next connection. `''` for none. Setting it moves the position for
   * the next reconnect (the connection that is open is not touched).
   */
  get lastEventId(): string {
    return this.#lastEventId
  }

  set lastEventId(id: string) {
    if (typeof id !== 'string' || /[\r\n\0]/.test(id)) {
      invalidOption('lastEventId', 'a string without CR, LF or NUL', id)
    }
    this.#lastEventId = id
    this.#parsedId = id
  }

  /** Closes the stream for good (reason `'aborted'`); events not yet iterated are dropped. */
  close(): void {
    this.#close({ reason: 'aborted' })
  }

  [Symbol.asyncIterator](): AsyncIterator<E> {
    if (this.#iterating) {
      throw new TypeError('This EventStream is already being iterated: one iterator at a time.')
    }
    this.#iterating = true
    this.#queue ??= new Deque()
    const queue = this.#queue
    let finished = false
    const next = async (): Promise<IteratorResult<E>> => {
      for (;;) {
        if (finished) return { done: true, value: undefined }
        const event = queue.shift()
        if (event !== undefined) {
          if (queue.size < HIGH_WATER / 2) this.#wakeLoop?.()
          return { done: false, value: event }
        }
        const info = this.#closeInfo
        if (info) {
          finished = true
          if (info.reason === 'error') throw info.error
          return { done: true, value: undefined }
        }
        await new Promise<void>((resolve) => {
          this.#wakeReader = resolve
        })
        this.#wakeReader = undefined
      }
    }
    return {
      next,
      return: async () => {
        finished = true
        this.close()
        return { done: true, value: undefined }
      },
    }
  }

  /** The host an attempt talks to: the stream's own methods, without exposing them. */
  readonly #host: AttemptHost = this.#createHost()

  #createHost(): AttemptHost {
    const stream = this
    return {
      stopSignal: this.#stop.signal,
      get lastEventId() {
        return stream.#lastEventId
      },
      opened: (response) => {
        this.#state = 'open'
        this.#call(() => this.#settings.onOpen?.(response))
      },
      deliver: (message) => this.#deliver(message),
      setRetry: (ms) => {
        this.#serverRetry = Math.min(ms, MAX_DELAY)
      },
      comment: (text) => this.#call(() => this.#settings.onComment?.(text)),
      room: () => {
        // Events waiting for an async schema: read no further until they are delivered.
        if (this.#pending) return this.#pending
        const queue = this.#queue
        if (!queue || queue.size < HIGH_WATER || this.#closeInfo) return undefined
        return new Promise<void>((resolve) => {
          this.#wakeLoop = () => {
            this.#wakeLoop = undefined
            resolve()
          }
        })
      },
    }
  }

  #deliver(message: EventSourceMessage): void {
    if (this.#closeInfo) return
    // The spec's "last event ID buffer" keeps its value across events that carry no id.
    const lastEventId = message.id ?? this.#parsedId
    this.#parsedId = lastEventId
    let mapped: E | Promise<E>
    try {
      mapped = this.#map({
        event: message.event ?? 'message',
        data: message.data,
        id: message.id,
        lastEventId,
      })
    } catch (error) {
      // Not delivered, so the position stays before it.
      this.#close({ reason: 'error', error })
      return
    }
    if (this.#pending === undefined && !isPromise(mapped)) {
      this.#handOut(mapped)
      return
    }
    // An async schema: this event, and every one after it until the chain is empty, is handed
    // out in parse order once it is ready.
    const previous = this.#pending ?? Promise.resolve()
    const next = previous
      .then(() => mapped)
      .then(
        (event) => this.#handOut(event),
        (error: unknown) => this.#close({ reason: 'error', error }),
      )
    this.#pending = next
    void next.then(() => {
      if (this.#pending === next) this.#pending = undefined
    })
  }

  /** Delivers one ready event: the position, the callbacks, the iterator, the end events. */
  #handOut(event: E): void {
    if (this.#closeInfo) return
    this.#lastEventId = event.lastEventId
    const { onEvent, on } = this.#settings
    const handler = Object.hasOwn(on, event.event) ? on[event.event] : undefined
    // Inline rather than through #call: this runs once per event, and a closure per event
    // costs a measurable share of the parse benchmark (bench/client.ts).
    try {
      onEvent?.(event)
      handler?.(event)
    } catch (error) {
      this.#close({ reason: 'error', error })
      return
    }
    if (this.#queue) {
      this.#queue.push(event)
      this.#wakeReader?.()
    }
    if (this.#settings.endEvents.has(event.event)) this.#close({ reason: 'end-event' })
  }

  /** Runs an application callback; a throw ends the stream with that error. */
  #call(callback: () => void): boolean {
    try {
      callback()
      return true
    } catch (error) {
      this.#close({ reason: 'error', error })
      return false
    }
  }

  async #run(): Promise<void> {
    const settings = this.#settings
    const host = this.#host
    let failures = 0
    try {
      for (let attempt = 0; !this.#closeInfo; attempt++) {
        this.#state = 'connecting'
        const outcome = await runAttempt(settings, host, attempt)
        // Events still waiting for an async schema are delivered (or fail) before anything
        // else: the next request must carry the position after them.
        if (this.#pending) await this.#pending
        this.#parsedId = this.#lastEventId
        if (this.#closeInfo || outcome.type === 'stopped') break
        if (outcome.type === 'no-content') {
          this.#close({ reason: 'no-content' })
          break
        }
        if (outcome.progressed) failures = 0
        failures++
        const failure = this.#describe(outcome, failures)
        let decision: boolean | number = failure.delay !== undefined
        if (settings.shouldRetry) {
          try {
            decision = await settings.shouldRetry(failure)
          } catch (error) {
            this.#close({ reason: 'error', error })
            break
          }
          if (this.#closeInfo) break
          if (typeof decision !== 'boolean' && !isDelay(decision)) {
            this.#close({
              reason: 'error',
              error: new SseError(
                'ERR_SSE_INVALID_OPTION',
                `Invalid return value of "shouldRetry": expected true, false or a whole number ` +
                  `of milliseconds from 0 to ${MAX_DELAY}, received ${describe(decision)}.`,
              ),
            })
            break
          }
        }
        if (decision === false) {
          this.#close({ reason: 'error', error: failure.error })
          break
        }
        const delay =
          typeof decision === 'number' ? decision : (failure.delay ?? this.#backoff(failures))
        this.#state = 'waiting'
        if (!this.#call(() => settings.onReconnecting?.({ ...failure, delay }))) break
        await this.#wait(delay)
      }
    } catch (error) {
      // A bug, or a runtime whose fetch misbehaves: never an unhandled rejection.
      this.#close({ reason: 'error', error })
    }
  }

  #backoff(failures: number): number {
    const base = this.#serverRetry ?? this.#settings.backoff.initial
    return backoffDelay(failures, base, this.#settings.backoff, Math.random())
  }

  /** The failure as the application sees it, with the client's default decision. */
  #describe(outcome: AttemptFailure, failures: number): ConnectFailure {
    const { response } = outcome
    let delay: number | undefined
    if (failures > this.#settings.maxRetries) delay = undefined
    else if (outcome.kind === 'status') {
      const status = response?.status ?? 0
      if (retryableStatus(status)) {
        const asked = retryAfterDelay(response?.headers.get('retry-after') ?? null, Date.now())
        delay = asked === undefined ? this.#backoff(failures) : Math.min(asked, MAX_DELAY)
      }
    } else if (outcome.kind === 'network' || outcome.kind === 'idle' || outcome.kind === 'ended') {
      delay = this.#backoff(failures)
    }
    return {
      kind: outcome.kind === 'request' ? 'network' : outcome.kind,
      error: outcome.error,
      response,
      status: response?.status,
      attempt: failures,
      delay,
    }
  }

  /** Waits `ms`, or less if the stream is closed meanwhile. */
  #wait(ms: number): Promise<void> {
    const signal = this.#stop.signal
    if (signal.aborted) return Promise.resolve()
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal.addEventListener('abort', done, { once: true })
    })
  }

  /** The one way to the `closed` state. */
  #close(info: { reason: ClientCloseReason; error?: unknown }): void {
    if (this.#closeInfo) return
    const closeInfo: ClientCloseInfo = { ...info, lastEventId: this.#lastEventId }
    this.#closeInfo = closeInfo
    this.#state = 'closed'
    if (info.reason === 'aborted') this.#queue?.clear()
    this.#userSignal?.removeEventListener('abort', this.#onUserAbort)
    this.#stop.abort(new SseError('ERR_SSE_CONNECTION', `The stream was closed (${info.reason}).`))
    this.#wakeReader?.()
    this.#wakeLoop?.()
    this.#resolveClosed(closeInfo)
    try {
      this.#settings.onClose?.(closeInfo)
    } catch (error) {
      // onClose runs once the stream is over, so its error has nothing left to end: it is
      // reported as an uncaught error, like a throwing event listener's.
      queueMicrotask(() => {
        throw error
      })
    }
  }
}

function isDelay(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_DELAY
}
