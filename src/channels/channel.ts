/**
 * A bounded in-memory channel: a producer sends, a stream reads. The TypeScript form of the
 * memory object streams in sse-starlette's "Memory Channels Alternative".
 *
 * @module
 */

import {
  type AnyContract,
  type ContractInput,
  checkContract,
  toWireEvent,
} from '../contracts/contract.ts'
import { InOrder } from '../contracts/in-order.ts'
import { checkOptionNames, invalidOption, SseError } from '../errors.ts'
import { nextByHand, type Puller, pullInto, type Receiver } from '../stream/source.ts'
import { Deque } from '../util/deque.ts'

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

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined }

// The queue and the waiting senders are made on first use, and the flags share one field: an
// idle channel (one per connected client, nothing sent yet) is one small object.
const Flag = { Closed: 1, ReaderGone: 2, Iterating: 4 } as const

class BoundedChannel<T> implements Channel<T>, AsyncIterator<T>, Puller {
  readonly capacity: number
  #items: Deque<T> | undefined
  #senders: Deque<Waiter<T>> | undefined
  /** The stream parked on an empty channel, to be handed the next item. */
  #reader: Receiver | undefined
  #flags = 0

  constructor(capacity: number) {
    this.capacity = capacity
  }

  get closed(): boolean {
    return (this.#flags & Flag.Closed) !== 0
  }

  get size(): number {
    return this.#items ? this.#items.size : 0
  }

  send(item: T): Promise<void> {
    if (this.closed) return Promise.reject(this.#closedError())
    const reader = this.#reader
    if (reader) {
      // A reader is parked on an empty channel: hand the item over directly.
      this.#reader = undefined
      reader.receive({ done: false, value: item })
      return Promise.resolve()
    }
    if (this.size < this.capacity) {
      ;(this.#items ??= new Deque()).push(item)
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => {
      ;(this.#senders ??= new Deque()).push({ item, resolve, reject })
    })
  }

  close(): void {
    if (this.closed) return
    this.#flags |= Flag.Closed
    const reader = this.#reader
    this.#reader = undefined
    // Senders still waiting never get in: their items would arrive after the end. A parked
    // reader has an empty queue; a rendezvous sender may still hand it its item.
    if (reader) reader.receive(this.#take() ?? DONE)
  }

  #closedError(): SseError {
    return new SseError(
      'ERR_SSE_CHANNEL_CLOSED',
      this.#flags & Flag.ReaderGone
        ? 'Channel closed: its reader went away (the client disconnected); stop sending.'
        : 'Channel closed: send() was called after close().',
    )
  }

  /** Takes the next item now, or answers `undefined` when the channel is empty and open. */
  #take(): IteratorResult<T> | undefined {
    const items = this.#items
    if (items && items.size > 0) {
      const value = items.shift() as T
      // Room was made: let the longest-waiting sender in.
      const sender = this.#senders?.shift()
      if (sender) {
        items.push(sender.item)
        sender.resolve()
      }
      return { done: false, value }
    }
    const sender = this.#senders?.shift()
    if (sender) {
      // Capacity 0 (a rendezvous): take straight from the waiting sender.
      sender.resolve()
      return { done: false, value: sender.item }
    }
    if (this.closed) return DONE
    return undefined
  }

  /** The reader went away: close, and turn away every waiting and later sender. */
  #abandon(): void {
    this.#flags |= Flag.ReaderGone | Flag.Closed
    this.#items = undefined
    const senders = this.#senders
    this.#senders = undefined
    if (senders && senders.size > 0) {
      const error = this.#closedError()
      for (let sender = senders.shift(); sender; sender = senders.shift()) sender.reject(error)
    }
    const reader = this.#reader
    this.#reader = undefined
    reader?.receive(DONE)
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.#flags & Flag.Iterating) {
      throw new SseError(
        'ERR_SSE_INVALID_CONTENT',
        'Channel already has a reader: a channel feeds one stream. Use a Broadcaster to send ' +
          'the same events to many clients.',
      )
    }
    this.#flags |= Flag.Iterating
    // Its own iterator, as a generator is: no iterator object or closures per stream (measured
    // with the bench's idle streams, which each hold a channel).
    return this
  }

  /**
   * The stream's read: the next item now, or `undefined` and the item handed to `receiver`
   * later (see `pullInto`). A waiting stream costs the channel one field. @internal
   */
  [pullInto](receiver: Receiver): IteratorResult<T> | undefined {
    const result = this.#take()
    if (result === undefined) this.#reader = receiver
    return result
  }

  /** The iterator's `next()`, for reading the channel by hand. @internal */
  next(): Promise<IteratorResult<T>> {
    return nextByHand(this)
  }

  /** The iterator's `return()`: the reading stream went away. @internal */
  return(): Promise<IteratorResult<T>> {
    this.#abandon()
    return Promise.resolve(DONE)
  }
}

/**
 * A channel bound to a contract: each item is checked when it is sent, and one the contract
 * refuses is never queued (its `send` rejects). Reading costs what any channel's does.
 */
class ContractChannel extends BoundedChannel<unknown> {
  readonly #contract: AnyContract
  readonly #inOrder = new InOrder()

  constructor(capacity: number, contract: AnyContract) {
    super(capacity)
    this.#contract = contract
  }

  override send(item: unknown): Promise<void> {
    if (this.closed) return super.send(item)
    let event: ReturnType<typeof toWireEvent>
    try {
      event = toWireEvent(this.#contract, item)
    } catch (error) {
      return Promise.reject(error)
    }
    return this.#inOrder.run(event, (checked) => super.send(checked))
  }
}

/** Options of {@link createChannel}. */
export interface ChannelOptions<C extends AnyContract> {
  /**
   * Bind the channel to a contract (`defineContract`): `send` takes only its events, checks
   * each one (its data validated by its schema unless the contract says `validate: false`) and
   * rejects with `ERR_SSE_INVALID_EVENT` or `ERR_SSE_INVALID_DATA` for one the contract
   * refuses, which is never queued. Data goes out as JSON.
   */
  contract: C
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
export function createChannel<T = unknown>(capacity: number): Channel<T>
/**
 * Makes a bounded channel bound to a contract: `send` takes the contract's events and checks
 * each one; see {@link ChannelOptions.contract}.
 *
 * @param capacity - as above.
 * @param options - `contract`, from `defineContract`.
 *
 * @example
 * ```ts
 * const channel = createChannel(10, { contract: jobEvents })
 * await channel.send({ event: 'progress', data: { percent: 50 } })
 * ```
 */
export function createChannel<C extends AnyContract>(
  capacity: number,
  options: ChannelOptions<C>,
): Channel<ContractInput<C>>
export function createChannel(
  capacity: number,
  options?: ChannelOptions<AnyContract>,
): Channel<unknown> {
  if (typeof capacity !== 'number' || !Number.isSafeInteger(capacity) || capacity < 0) {
    invalidOption('capacity', 'a non-negative integer (how many items to hold)', capacity)
  }
  if (options === undefined) return new BoundedChannel(capacity)
  checkOptionNames('createChannel()', options, ['contract'])
  return new ContractChannel(capacity, checkContract(options.contract))
}
