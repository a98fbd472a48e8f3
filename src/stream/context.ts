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
}

/**
 * A stream's context. `signal`, `lastEventId` and `request` are own enumerable properties (so
 * `{ ...ctx, filter }` keeps them). `signal` is an accessor, defined with one shared getter:
 * per-object getter closures (an object literal's `get signal()`) measured ~0.35 KiB per stream,
 * as V8 then keeps each context as a dictionary.
 */
export class PumpContext<Req> implements StreamContext<Req> {
  declare readonly signal: AbortSignal
  declare readonly lastEventId: string | undefined
  declare readonly request: Req
  readonly #owner: SignalOwner

  constructor(owner: SignalOwner, lastEventId: string | undefined, request: Req) {
    this.#owner = owner
    // In the order of the plain object this replaces: signal, lastEventId, request.
    Object.defineProperty(this, 'signal', SIGNAL)
    this.lastEventId = lastEventId
    this.request = request
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
