/**
 * Turns every content form into one pull interface for the pump.
 *
 * @internal
 * @module
 */

import { describe, SseError } from '../errors.ts'
import type { Content, ContentSource, StreamContext } from './types.ts'

/**
 * Where a source delivers a result it could not give at once: the pump. Called at most once per
 * pull that answered `undefined`.
 */
export interface Receiver {
  /** The result of the pull that was pending. */
  receive(result: IteratorResult<unknown>): void
  /** The pull that was pending failed (a rejected `next()`, an errored stream). */
  receiveError(error: unknown): void
}

/**
 * A source may define a method under this key to be read through callbacks instead of
 * promises: `source[pullInto](receiver)` answers the next result at once, or `undefined` and
 * later calls `receiver.receive(result)` exactly once. A stream waiting on such a source holds
 * no promise, no async frame and no closure, only the receiver in the source's own field:
 * channels and broadcast subscriptions implement it, so an idle stream costs a few fields.
 * A registered symbol, so two installed copies of Oven understand each other.
 */
export const pullInto: unique symbol = Symbol.for('oven-sse.pullInto') as never

/** A source the pump pulls from. Channels and subscriptions are pullers themselves. */
export interface Puller {
  /** The next result now, or `undefined` when it will be handed to `receiver` later. */
  [pullInto](receiver: Receiver): IteratorResult<unknown> | undefined
  /** Stops the source early: runs a generator's `finally`, cancels a stream. */
  return?(): unknown
}

/** A read by hand (`next()`), settling its promise with what the source hands over. */
class PromisedRead implements Receiver {
  readonly #resolve: (result: IteratorResult<unknown>) => void
  readonly #reject: (error: unknown) => void
  constructor(
    resolve: (result: IteratorResult<unknown>) => void,
    reject: (error: unknown) => void,
  ) {
    this.#resolve = resolve
    this.#reject = reject
  }
  receive(result: IteratorResult<unknown>): void {
    this.#resolve(result)
  }
  receiveError(error: unknown): void {
    this.#reject(error)
  }
}

/**
 * `next()` of an async iterator that reads through {@link pullInto} (a channel, a
 * subscription): the same read, as a promise, for code that iterates it by hand.
 */
export function nextByHand<T>(source: Puller): Promise<IteratorResult<T>> {
  return new Promise((resolve, reject) => {
    const result = source[pullInto](
      new PromisedRead(resolve as (result: IteratorResult<unknown>) => void, reject),
    )
    if (result) resolve(result as IteratorResult<T>)
  })
}

/** Whether `value` has a callable `then`: a promise or any thenable. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  )
}

function invalidContent(received: unknown, hint = ''): SseError {
  return new SseError(
    'ERR_SSE_INVALID_CONTENT',
    'Invalid content: expected an async iterable, an iterable, a ReadableStream or a function ' +
      `(ctx) => one of those, received ${describe(received)}.${hint}`,
  )
}

/** Checks the shape of `content` at the call site, before anything is sent. */
export function checkContent(content: unknown): void {
  if (typeof content === 'function') return
  if (typeof content === 'string') {
    throw invalidContent(content, ' To send one event, pass [text] or yield it from a generator.')
  }
  if (
    content === null ||
    typeof content !== 'object' ||
    !(
      Symbol.asyncIterator in content ||
      Symbol.iterator in content ||
      typeof (content as ReadableStream).getReader === 'function'
    )
  ) {
    throw invalidContent(content)
  }
}

/**
 * The stream as a source may see it: `dropClient()` drops the client at once (the stream ends
 * with reason `timeout` and the connection is closed, even while the pump waits on a socket the
 * client stopped reading).
 */
export interface ClientDropper {
  dropClient(): void
}

/**
 * The key of a source's method that is handed its stream as a {@link ClientDropper}: for a
 * source that learns its client has fallen too far behind, such as a broadcast subscription
 * with `overflow: 'disconnect'`. A registered symbol, so two installed copies of Oven understand
 * each other (its name changed when the argument became the stream instead of a closure).
 */
export const takeClientDropper: unique symbol = Symbol.for('oven-sse.takeClientDropper.v2') as never

/** A source that wants its stream's client dropper; see {@link takeClientDropper}. */
export interface ClientDropperTaker {
  [takeClientDropper](stream: ClientDropper): void
}

// Pullers are small classes rather than objects of two arrow functions: measured (bench, heap
// snapshots of idle streams) the closures and their scope cost ~150 bytes per stream.

/** Hands a promised result to the receiver; the closures live only while the pull is pending. */
function settleLater(promise: PromiseLike<IteratorResult<unknown>>, receiver: Receiver): undefined {
  promise.then(
    (result) => receiver.receive(result),
    (error: unknown) => receiver.receiveError(error),
  )
  return undefined
}

/** Reads a ReadableStream through its reader: `cancel()` stops it even mid-read. */
class ReaderPuller implements Puller {
  readonly #reader: ReadableStreamDefaultReader<unknown>
  constructor(reader: ReadableStreamDefaultReader<unknown>) {
    this.#reader = reader
  }
  [pullInto](receiver: Receiver): undefined {
    return settleLater(this.#reader.read() as Promise<IteratorResult<unknown>>, receiver)
  }
  return(): unknown {
    return this.#reader.cancel()
  }
}

/**
 * Pulls a sync or async iterator; `return()` calls the iterator's own (a generator's
 * `finally`). A sync iterator's results are answered at once: no promise per item.
 */
class IteratorPuller implements Puller {
  readonly #iterator: Iterator<unknown> | AsyncIterator<unknown>
  constructor(iterator: Iterator<unknown> | AsyncIterator<unknown>) {
    this.#iterator = iterator
  }
  [pullInto](receiver: Receiver): IteratorResult<unknown> | undefined {
    const result = this.#iterator.next()
    return isThenable(result) ? settleLater(result, receiver) : result
  }
  return(): unknown {
    return this.#iterator.return?.()
  }
}

/** Whether `value` reads through {@link pullInto} itself. */
function isPuller(value: unknown): value is Puller {
  return typeof (value as Partial<Puller> | undefined)?.[pullInto] === 'function'
}

function fromIterator(iterator: Iterator<unknown> | AsyncIterator<unknown>): Puller {
  return isPuller(iterator) ? iterator : new IteratorPuller(iterator)
}

export function fromSource(source: ContentSource): Puller {
  if (typeof (source as ReadableStream).getReader === 'function') {
    return new ReaderPuller((source as ReadableStream<unknown>).getReader())
  }
  if (Symbol.asyncIterator in source) {
    return fromIterator((source as AsyncIterable<unknown>)[Symbol.asyncIterator]())
  }
  if (Symbol.iterator in source && typeof source !== 'string') {
    return fromIterator((source as Iterable<unknown>)[Symbol.iterator]())
  }
  throw invalidContent(source)
}

/**
 * Resolves `content` into a {@link Puller}: calls a content function with `ctx` (awaiting it
 * when it returns a promise) and checks what comes back. `ctx` is needed only for a function.
 */
export async function openContent<Req>(
  content: Content<Req>,
  ctx: StreamContext<Req> | undefined,
  stream: ClientDropper,
): Promise<Puller> {
  let source: unknown = content
  if (typeof content === 'function') {
    source = content(ctx!)
    if (isThenable(source)) source = await source
    checkContent(source)
    if (typeof source === 'function') throw invalidContent(source)
  }
  const puller = fromSource(source as ContentSource)
  const take = (source as Partial<ClientDropperTaker>)[takeClientDropper]
  if (typeof take === 'function') take.call(source, stream)
  return puller
}
