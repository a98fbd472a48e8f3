/**
 * A bounded in-memory channel: a producer sends, a stream reads. The TypeScript form of the
 * memory object streams in sse-starlette's "Memory Channels Alternative".
 *
 * @module
 */

import { invalidOption, SseError } from '../errors.ts'

/**
 * A bounded queue between one producer and one reader (usually an event stream).
 *
 * - `await send(item)` waits while the channel holds `capacity` items, so a fast producer is
 *   held back by a slow client instead of filling memory.
 * - `close()` ends it: the reader receives what is queued, then finishes.
 * - When the reader goes away (the client disconnected), pending and later sends reject with
 *   `ERR_SSE_CHANNEL_CLOSED`, which stops a producer that is not watching `ctx.signal`.
 *
 * The channel is itself async-iterable content for `EventSourceResponse` / `sendEventStream`.
 */
export interface Channel<T> extends AsyncIterable<T> {
  /** Queues `item`, waiting while the channel is full. Rejects once the channel is closed. */
  send(item: T): Promise<void>
  /** Ends the channel; the reader drains what is queued. Idempotent. */
  close(): void
  /** Whether `close()` was called or the reader went away. */
  readonly closed: boolean
  /** How many items are queued. */
  readonly size: number
  /** The most items held before `send` waits. */
  readonly capacity: number
}

interface Waiter<T> {
  item: T
  resolve: () => void
  reject: (error: SseError) => void
}

class BoundedChannel<T> implements Channel<T>, AsyncIterator<T> {
  readonly capacity: number
  #items: T[] = []
  #head = 0
  #senders: Waiter<T>[] = []
  #reader: ((result: IteratorResult<T>) => void) | undefined
  #closed = false
  #readerGone = false
  #iterating = false

  constructor(capacity: number) {
    this.capacity = capacity
  }

  get closed(): boolean {
    return this.#closed
  }

  get size(): number {
    return this.#items.length - this.#head
  }

  send(item: T): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError())
    const reader = this.#reader
    if (reader) {
      // A reader is parked on an empty channel: hand the item over directly.
      this.#reader = undefined
      reader({ done: false, value: item })
      return Promise.resolve()
    }
    if (this.size < this.capacity) {
      this.#items.push(item)
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => {
      this.#senders.push({ item, resolve, reject })
    })
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    const reader = this.#reader
    this.#reader = undefined
    // Senders still waiting never get in: their items would arrive after the end.
    if (this.size === 0 && this.#senders.length === 0) reader?.({ done: true, value: undefined })
    else if (reader) this.#take().then(reader)
  }

  #closedError(): SseError {
    return new SseError(
      'ERR_SSE_CHANNEL_CLOSED',
      this.#readerGone
        ? 'Channel closed: its reader went away (the client disconnected); stop sending.'
        : 'Channel closed: send() was called after close().',
    )
  }

  /** Takes the next item, waiting while the channel is empty and open. */
  #take(): Promise<IteratorResult<T>> {
    if (this.size > 0) {
      const value = this.#items[this.#head] as T
      this.#items[this.#head] = undefined as T
      this.#head++
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head)
        this.#head = 0
      }
      // Room was made: let the longest-waiting sender in.
      const sender = this.#senders.shift()
      if (sender) {
        this.#items.push(sender.item)
        sender.resolve()
      }
      return Promise.resolve({ done: false, value })
    }
    const sender = this.#senders.shift()
    if (sender) {
      // Capacity 0 (a rendezvous): take straight from the waiting sender.
      sender.resolve()
      return Promise.resolve({ done: false, value: sender.item })
    }
    if (this.#closed) return Promise.resolve({ done: true, value: undefined })
    return new Promise((resolve) => {
      this.#reader = resolve
    })
  }

  /** The reader went away: close, and turn away every waiting and later sender. */
  #abandon(): void {
    this.#readerGone = true
    this.#closed = true
    this.#items = []
    this.#head = 0
    const error = this.#closedError()
    for (const sender of this.#senders.splice(0)) sender.reject(error)
    const reader = this.#reader
    this.#reader = undefined
    reader?.({ done: true, value: undefined })
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.#iterating) {
      throw new SseError(
        'ERR_SSE_INVALID_CONTENT',
        'Channel already has a reader: a channel feeds one stream. Use a Broadcaster to send ' +
          'the same events to many clients.',
      )
    }
    this.#iterating = true
    // Its own iterator, as a generator is: no iterator object or closures per stream (measured
    // with the bench's idle streams, which each hold a channel).
    return this
  }

  /** The iterator's `next()`: the reading stream takes the next item. @internal */
  next(): Promise<IteratorResult<T>> {
    return this.#take()
  }

  /** The iterator's `return()`: the reading stream went away. @internal */
  return(): Promise<IteratorResult<T>> {
    this.#abandon()
    return Promise.resolve({ done: true, value: undefined })
  }
}

/**
 * Makes a bounded channel.
 *
 * @param capacity - how many items it holds before `send` waits; `0` makes every send wait
 *   for the reader (a rendezvous). A non-negative integer.
 *
 * @example
 * ```ts
 * const channel = createChannel<EventInit>(10)
 * return new EventSourceResponse(channel, {
 *   request,
 *   async dataSender({ signal }) {
 *     for (let i = 0; i < 10 && !signal.aborted; i++) {
 *       await channel.send({ data: `Item ${i}` })
 *       await sleep(1000)
 *     }
 *     channel.close()
 *   },
 * })
 * ```
 */
export function createChannel<T = unknown>(capacity: number): Channel<T> {
  if (typeof capacity !== 'number' || !Number.isSafeInteger(capacity) || capacity < 0) {
    invalidOption('capacity', 'a non-negative integer (how many items to hold)', capacity)
  }
  return new BoundedChannel<T>(capacity)
}
