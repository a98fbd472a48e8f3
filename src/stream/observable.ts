/**
 * An Observable as a stream's source: a bounded queue between a producer that pushes and a pump
 * that pulls.
 *
 * Only the minimal Observable protocol is used — `subscribe({ next, error, complete })`
 * returning `{ unsubscribe() }` — so any implementation works (rxjs 7 and 8, the TC39
 * proposal's shape) and none is imported.
 *
 * The invariants:
 * - at most `queue` items wait here: past that, the producer is unsubscribed, the queue is
 *   freed and the client is dropped (the stream ends with reason `timeout`), the Broadcaster's
 *   `overflow: 'disconnect'`. An `EventSource` reconnects with the id of the last event it
 *   received, so a resumable producer loses nothing; nothing is dropped while the stream goes on;
 * - the producer is unsubscribed exactly once, whichever way the stream ends (`return()` from the
 *   pump, overflow), unless it ended by itself (`error`, `complete`);
 * - an error before the source is handed over rejects {@link openObservable}: nothing has been
 *   sent, so the caller's framework answers with its error response. After that, an error ends
 *   the stream once the items queued before it are out.
 *
 * @internal
 * @module
 */

import { describe, SseError } from '../errors.ts'
import { Deque } from '../util/deque.ts'
import {
  type ClientDropper,
  type ClientDropperTaker,
  nextByHand,
  type Puller,
  pullInto,
  type Receiver,
  takeClientDropper,
} from './source.ts'

/** What a subscriber of an Observable is given. */
export interface ObservableObserver<T> {
  next(value: T): void
  error(error: unknown): void
  complete(): void
}

/**
 * The minimal Observable protocol: an rxjs `Observable` (7 or 8) is one, as is anything whose
 * `subscribe(observer)` returns something with `unsubscribe()`.
 */
export interface Subscribable<T> {
  subscribe(observer: ObservableObserver<T>): { unsubscribe(): void }
}

/** Whether `value` is an Observable ({@link Subscribable}). */
export function isSubscribable(value: unknown): value is Subscribable<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as Partial<Subscribable<unknown>>).subscribe === 'function'
  )
}

/** The default of `queue`: as many as a Broadcaster's subscriber may have waiting. */
export const DEFAULT_OBSERVABLE_QUEUE = 1000

/** Checks the `queue` option: a whole number of items, at least 1. */
export function checkQueue(queue: unknown): number {
  if (queue === undefined) return DEFAULT_OBSERVABLE_QUEUE
  if (typeof queue !== 'number' || !Number.isSafeInteger(queue) || queue < 1) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Invalid option "queue": expected a whole number of events, at least 1, received ${describe(queue)}.`,
    )
  }
  return queue
}

/** Options of {@link openObservable}. */
export interface ObservableSourceOptions {
  /** The most items that may wait for the client; see the module's invariants. */
  queue: number
  /** Turns each emitted value into a content item, when the stream takes it. */
  toItem: (value: unknown) => unknown
  /** Told once, when the queue overflowed and the client is being dropped. */
  onOverflow: (queue: number) => void
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined }

/**
 * Where the source stands. Items may be queued in `open`, `completed` and `failed`; in the last
 * two the producer has ended by itself and the queue drains before the end (or the error).
 * `overflowed` and `stopped` hold nothing: the producer was unsubscribed.
 */
type State = 'open' | 'completed' | 'failed' | 'overflowed' | 'stopped'

class ObservableSource implements Puller, AsyncIterator<unknown>, ClientDropperTaker {
  readonly #options: ObservableSourceOptions
  readonly #items = new Deque<unknown>()
  #state: State = 'open'
  #error: unknown
  #subscription: { unsubscribe(): void } | undefined
  /** The stream parked on an empty queue, to be handed the next item. */
  #reader: Receiver | undefined
  /** Drops the client; given by the pump once the source is handed over. */
  #stream: ClientDropper | undefined
  /** Told of the first notification while {@link openObservable} waits for it. */
  onFirst: (() => void) | undefined

  constructor(options: ObservableSourceOptions) {
    this.#options = options
  }

  get state(): State {
    return this.#state
  }

  /** How many items wait. */
  get size(): number {
    return this.#items.size
  }

  get error(): unknown {
    return this.#error
  }

  subscribe(observable: Subscribable<unknown>): void {
    // Bound methods of one observer object: the producer may call them unbound.
    const subscription = observable.subscribe({
      next: (value) => this.#next(value),
      error: (error) => this.#fail(error),
      complete: () => this.#complete(),
    })
    // An Observable that ended during `subscribe` (`of(...)`, `throwError`) is already done.
    if (this.#state === 'open') this.#subscription = subscription
    else if (this.#state === 'stopped' || this.#state === 'overflowed') subscription.unsubscribe()
  }

  #next(value: unknown): void {
    if (this.#state !== 'open') return
    const reader = this.#reader
    if (reader) {
      this.#reader = undefined
      this.#handOver(reader, value)
    } else if (this.#items.size < this.#options.queue) {
      this.#items.push(value)
    } else {
      this.#overflow()
    }
    this.#first()
  }

  #fail(error: unknown): void {
    if (this.#state !== 'open') return
    this.#state = 'failed'
    this.#error = error
    this.#subscription = undefined
    const reader = this.#reader
    this.#reader = undefined
    reader?.receiveError(error)
    this.#first()
  }

  #complete(): void {
    if (this.#state !== 'open') return
    this.#state = 'completed'
    this.#subscription = undefined
    const reader = this.#reader
    this.#reader = undefined
    reader?.receive(DONE)
    this.#first()
  }

  #first(): void {
    const onFirst = this.onFirst
    this.onFirst = undefined
    onFirst?.()
  }

  /**
   * The client fell `queue` items behind: free the queue, stop the producer, drop the client.
   * Before the pump has the source (no dropper yet) {@link openObservable} rejects instead, or
   * the dropper, once given, is used at once.
   */
  #overflow(): void {
    this.#state = 'overflowed'
    this.#items.clear()
    this.#unsubscribe()
    if (this.#stream) this.#dropClient(this.#stream)
  }

  #dropClient(stream: ClientDropper): void {
    this.#options.onOverflow(this.#options.queue)
    stream.dropClient()
  }

  #unsubscribe(): void {
    const subscription = this.#subscription
    this.#subscription = undefined
    subscription?.unsubscribe()
  }

  #handOver(reader: Receiver, value: unknown): void {
    let item: unknown
    try {
      item = this.#options.toItem(value)
    } catch (error) {
      reader.receiveError(error)
      return
    }
    reader.receive({ done: false, value: item })
  }

  /** The stream's read; see `pullInto`. @internal */
  [pullInto](receiver: Receiver): IteratorResult<unknown> | undefined {
    if (this.#items.size > 0) {
      return { done: false, value: this.#options.toItem(this.#items.shift()) }
    }
    switch (this.#state) {
      case 'open':
        this.#reader = receiver
        return undefined
      case 'failed':
        throw this.#error
      default:
        return DONE
    }
  }

  /** The pump's client dropper, for an overflow. @internal */
  [takeClientDropper](stream: ClientDropper): void {
    this.#stream = stream
    if (this.#state === 'overflowed') this.#dropClient(stream)
  }

  [Symbol.asyncIterator](): AsyncIterator<unknown> {
    return this
  }

  /** The iterator's `next()`, for reading the source by hand. @internal */
  next(): Promise<IteratorResult<unknown>> {
    return nextByHand(this)
  }

  /** The stream ended: unsubscribe, once. @internal */
  return(): Promise<IteratorResult<unknown>> {
    if (this.#state === 'open') this.#state = 'stopped'
    this.#items.clear()
    this.#reader = undefined
    this.#unsubscribe()
    return Promise.resolve(DONE)
  }
}

/**
 * Subscribes to `observable` and resolves with it as a source once its first notification has
 * come or a macrotask has passed, whichever is first — the moment Nest's own `@Sse()` sends its
 * head — so an error the producer raises at once (`throwError`, a failed check in a `defer`)
 * rejects before anything is sent. A burst of more than `queue` items in that time rejects too:
 * no client could have read them.
 */
export function openObservable(
  observable: Subscribable<unknown>,
  options: ObservableSourceOptions,
): Promise<AsyncIterable<unknown>> {
  const source = new ObservableSource(options)
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined
    const settle = () => {
      clearTimeout(timer)
      source.onFirst = undefined
      if (source.state === 'failed') {
        reject(source.error)
      } else if (source.state === 'overflowed') {
        reject(
          new SseError(
            'ERR_SSE_INVALID_CONTENT',
            `The Observable emitted more than ${options.queue} events (the "queue" option) before ` +
              'the stream could send any; raise "queue" or emit them over time.',
          ),
        )
      } else {
        resolve(source)
      }
    }
    try {
      source.subscribe(observable)
    } catch (error) {
      void source.return()
      reject(error)
      return
    }
    // What it did during `subscribe` (`of(...)`, `throwError`) decides at once; a burst there
    // is judged whole, not by its first item.
    if (source.state !== 'open' || source.size > 0) {
      settle()
      return
    }
    source.onFirst = settle
    timer = setTimeout(settle, 0)
  })
}
