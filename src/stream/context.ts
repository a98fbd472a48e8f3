/**
 * The `ctx` a content function, a `dataSender` and a source see: `signal`, `lastEventId`,
 * `request`.
 *
 * Made by the pump only when something asks for it, and its `signal` only when something reads
 * it: an idle stream whose source never looks (a channel, a subscription passed as is, an
 * iterable) carries neither. Measured with the `idle` scenario of `npm run bench` (heap per
 * connection): an AbortSignal is an EventTarget with two Maps, ~0.5 KiB, the largest single
 * cost of an idle stream.
 *
 * @internal
 * @module
 */

import type { StreamContext } from './types.ts'

/** Where a context gets its signal from: the pump, which makes it on first use. */
export interface SignalOwner {
  /** `ctx.signal`, made on first use. */
  contextSignal(): AbortSignal
  /** Whether the stream has stopped wanting items (`ctx.signal` would be aborted). */
  streamAborted(): boolean
}

/**
 * Told when a stream stops wanting items, at the moment `ctx.signal` aborts: an EventListener
 * object, so the same object can also listen to an `AbortSignal`.
 */
export interface StreamEndListener {
  handleEvent(): void
}

/**
 * Keys of a context's internal methods that tell a listener when its stream stops wanting items,
 * without making `ctx.signal`: a broadcast subscription given `ctx` listens this way (an
 * AbortSignal and its listener are ~0.9 KiB per idle subscriber; measured with heap snapshots of
 * 3 200 idle streams). Registered symbols, so two installed copies of Oven understand each other.
 *
 * @internal
 */
export const onStreamEnd: unique symbol = Symbol.for('oven-sse.onStreamEnd') as never
/** @internal See {@link onStreamEnd}. */
export const offStreamEnd: unique symbol = Symbol.for('oven-sse.offStreamEnd') as never

/** A context that tells listeners when its stream ends; see {@link onStreamEnd}. @internal */
export interface StreamEnds {
  /** Registers `listener`; `false` (and nothing registered) when the stream has ended already. */
  [onStreamEnd](listener: StreamEndListener): boolean
  [offStreamEnd](listener: StreamEndListener): void
}

/** The {@link StreamEnds} of `value`, when it is a stream's context. @internal */
export function streamEndsOf(value: unknown): StreamEnds | undefined {
  return typeof (value as Partial<StreamEnds> | undefined)?.[onStreamEnd] === 'function'
    ? (value as StreamEnds)
    : undefined
}

/**
 * A stream's context. `signal`, `lastEventId` and `request` are own enumerable properties (so
 * `{ ...ctx, filter }` keeps them). `signal` is an accessor, defined with one shared getter:
 * per-object getter closures (an object literal's `get signal()`) measured ~0.35 KiB per stream,
 * as V8 then keeps each context as a dictionary.
 */
export class PumpContext<Req> implements StreamContext<Req>, StreamEnds {
  declare readonly signal: AbortSignal
  declare readonly lastEventId: string | undefined
  declare readonly request: Req
  readonly #owner: SignalOwner
  /** Who to tell when the stream ends: one listener (the usual case), or several. */
  #ends: StreamEndListener | Set<StreamEndListener> | undefined

  constructor(owner: SignalOwner, lastEventId: string | undefined, request: Req) {
    this.#owner = owner
    // In the order of the plain object this replaces: signal, lastEventId, request.
    Object.defineProperty(this, 'signal', SIGNAL)
    this.lastEventId = lastEventId
    this.request = request
  }

  [onStreamEnd](listener: StreamEndListener): boolean {
    if (this.#owner.streamAborted()) return false
    const ends = this.#ends
    if (ends === undefined || ends === listener) this.#ends = listener
    else if (ends instanceof Set) ends.add(listener)
    else this.#ends = new Set([ends, listener])
    return true
  }

  [offStreamEnd](listener: StreamEndListener): void {
    const ends = this.#ends
    if (ends === listener) this.#ends = undefined
    else if (ends instanceof Set) ends.delete(listener)
  }

  /**
   * The stream stopped wanting items: tells every listener once, in registration order. Called
   * by the pump where it aborts `ctx.signal`.
   */
  streamEnded(): void {
    const ends = this.#ends
    this.#ends = undefined
    if (ends instanceof Set) for (const listener of ends) listener.handleEvent()
    else ends?.handleEvent()
  }

  /** The getter behind every context's `signal`. */
  static signalOf(ctx: PumpContext<unknown>): AbortSignal {
    return ctx.#owner.contextSignal()
  }
}

const SIGNAL: PropertyDescriptor = {
  get(this: PumpContext<unknown>) {
    return PumpContext.signalOf(this)
  },
  enumerable: true,
  configurable: true,
}
