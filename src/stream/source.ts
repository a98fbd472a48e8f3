/**
 * Turns every content form into one pull interface for the pump.
 *
 * @internal
 * @module
 */

import { describe, SseError } from '../errors.ts'
import type { Content, ContentSource, StreamContext } from './types.ts'

/**
 * A source the pump pulls from. `next()` may answer synchronously (sync iterables) so that the
 * pump need not pay for a promise per item when none is needed.
 */
export interface Puller {
  next(): IteratorResult<unknown> | Promise<IteratorResult<unknown>>
  /** Stops the source early: runs a generator's `finally`, cancels a stream. */
  stop(): unknown
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
 * A source may define a method under this key to be handed a function that drops its client at
 * once: the stream ends with reason `timeout` and the connection is closed, even while the pump
 * waits on a socket the client stopped reading. For a source that learns its client has fallen
 * too far behind, such as a broadcast subscription with `overflow: 'disconnect'`. A registered
 * symbol, so two installed copies of Oven understand each other.
 */
export const dropClient: unique symbol = Symbol.for('oven-sse.dropClient') as never

/** A source that wants the {@link dropClient} hook. */
export interface ClientDropping {
  [dropClient](drop: () => void): void
}

// Pullers are small classes rather than objects of two arrow functions: measured (bench, heap
// snapshots of idle streams) the closures and their scope cost ~150 bytes per stream.

/** Reads a ReadableStream through its reader: `cancel()` stops it even mid-read. */
class ReaderPuller implements Puller {
  readonly #reader: ReadableStreamDefaultReader<unknown>
  constructor(reader: ReadableStreamDefaultReader<unknown>) {
    this.#reader = reader
  }
  next(): Promise<IteratorResult<unknown>> {
    return this.#reader.read() as Promise<IteratorResult<unknown>>
  }
  stop(): unknown {
    return this.#reader.cancel()
  }
}

/** Pulls a sync or async iterator; `stop()` calls its `return()` (a generator's `finally`). */
class IteratorPuller implements Puller {
  readonly #iterator: Iterator<unknown> | AsyncIterator<unknown>
  constructor(iterator: Iterator<unknown> | AsyncIterator<unknown>) {
    this.#iterator = iterator
  }
  next(): IteratorResult<unknown> | Promise<IteratorResult<unknown>> {
    return this.#iterator.next()
  }
  stop(): unknown {
    return this.#iterator.return?.()
  }
}

function fromSource(source: ContentSource): Puller {
  if (typeof (source as ReadableStream).getReader === 'function') {
    return new ReaderPuller((source as ReadableStream<unknown>).getReader())
  }
  if (Symbol.asyncIterator in source) {
    return new IteratorPuller((source as AsyncIterable<unknown>)[Symbol.asyncIterator]())
  }
  if (Symbol.iterator in source && typeof source !== 'string') {
    return new IteratorPuller((source as Iterable<unknown>)[Symbol.iterator]())
  }
  throw invalidContent(source)
}

/**
 * Resolves `content` into a {@link Puller}: calls a content function (awaiting it when it
 * returns a promise) and checks what comes back.
 */
export async function openContent<Req>(
  content: Content<Req>,
  ctx: StreamContext<Req>,
  stream: { dropClient(): void },
): Promise<Puller> {
  let source: unknown = content
  if (typeof content === 'function') {
    source = content(ctx)
    if (isThenable(source)) source = await source
    checkContent(source)
    if (typeof source === 'function') throw invalidContent(source)
  }
  const puller = fromSource(source as ContentSource)
  const hook = (source as Partial<ClientDropping>)[dropClient]
  // The closure is made only for a source that asks for it, not for every stream.
  if (typeof hook === 'function') hook.call(source, () => stream.dropClient())
  return puller
}
