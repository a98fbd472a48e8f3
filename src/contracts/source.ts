/**
 * A source bound to a contract: every item is checked against the contract and its data
 * turned into JSON before the pump encodes it.
 *
 * @module
 */

import {
  checkContent,
  fromSource,
  nextByHand,
  type Puller,
  pullInto,
  type Receiver,
} from '../stream/source.ts'
import type { Content, StreamContext } from '../stream/types.ts'
import {
  type AnyContract,
  type ContractInput,
  checkContract,
  isPromise,
  toWireEvent,
  type WireEvent,
} from './contract.ts'

/** What a source bound to contract `C` may be: it produces the contract's events. */
export type ContractSource<C extends AnyContract> =
  | AsyncIterable<ContractInput<C>>
  | Iterable<ContractInput<C>>
  | ReadableStream<ContractInput<C>>

/** What {@link typedSource} takes: a source, or a function of the stream context returning one. */
export type ContractContent<C extends AnyContract, Req = unknown> =
  | ContractSource<C>
  | ((ctx: StreamContext<Req>) => ContractSource<C> | Promise<ContractSource<C>>)

/**
 * Reads a source through the pump's pull interface and checks each item on the way: the
 * stream pays one check per event and no promise for a synchronous schema. It is the pump's
 * receiver for the inner source's late answers, and hands them on to the pump's.
 */
class ContractPuller implements Puller, Receiver, AsyncIterator<WireEvent> {
  readonly #contract: AnyContract
  readonly #inner: Puller
  /** The pump waiting for the pending pull. */
  #receiver: Receiver | undefined

  constructor(contract: AnyContract, inner: Puller) {
    this.#contract = contract
    this.#inner = inner
  }

  [pullInto](receiver: Receiver): IteratorResult<unknown> | undefined {
    this.#receiver = receiver
    const result = this.#inner[pullInto](this)
    if (result === undefined) return undefined
    this.#receiver = undefined
    return this.#check(result, receiver)
  }

  /** The inner source's late answer. @internal */
  receive(result: IteratorResult<unknown>): void {
    const receiver = this.#receiver!
    this.#receiver = undefined
    let checked: IteratorResult<unknown> | undefined
    try {
      checked = this.#check(result, receiver)
    } catch (error) {
      receiver.receiveError(error)
      return
    }
    if (checked !== undefined) receiver.receive(checked)
  }

  /** The inner source's late failure. @internal */
  receiveError(error: unknown): void {
    const receiver = this.#receiver!
    this.#receiver = undefined
    receiver.receiveError(error)
  }

  /**
   * Checks one result: the wire event at once, or `undefined` when an async schema answers
   * later (to `receiver`). Throws for an event the contract refuses: the pump ends the stream
   * and reports the error through `onError`.
   */
  #check(result: IteratorResult<unknown>, receiver: Receiver): IteratorResult<unknown> | undefined {
    if (result.done) return result
    const event = toWireEvent(this.#contract, result.value)
    if (!isPromise(event)) return { done: false, value: event }
    event.then(
      (value) => receiver.receive({ done: false, value }),
      (error: unknown) => receiver.receiveError(error),
    )
    return undefined
  }

  [Symbol.asyncIterator](): AsyncIterator<WireEvent> {
    return this
  }

  /** The iterator's `next()`, for reading by hand. @internal */
  next(): Promise<IteratorResult<WireEvent>> {
    return nextByHand(this)
  }

  /** Stops the inner source (a generator's `finally` runs). @internal */
  async return(): Promise<IteratorResult<WireEvent>> {
    await this.#inner.return?.()
    return { done: true, value: undefined }
  }
}

/** A source's events, checked as they are read. */
function bind(contract: AnyContract, source: unknown): AsyncIterable<WireEvent> {
  // Refuses what is not a source (a function is refused when the stream opens it).
  checkContent(source)
  return {
    [Symbol.asyncIterator]: () => new ContractPuller(contract, fromSource(source as never)),
  }
}

/**
 * Binds a source to a contract: TypeScript checks each `yield` against the contract's events,
 * and at run time each event is checked before it is encoded. An event the contract refuses (a
 * name it does not declare, data its schema rejects) is never sent: the stream ends (reason
 * `error`) and the error, an {@link SseError} `ERR_SSE_INVALID_EVENT` or `ERR_SSE_INVALID_DATA`
 * with the schema's issues, reaches the stream's `onError`. The data goes out as JSON.
 *
 * @param contract - from `defineContract`.
 * @param content - a source of the contract's events, or a function of the stream context
 *   returning one (as any content).
 * @returns content for `EventSourceResponse`, `sendEventStream` or a framework helper.
 * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` when `contract` is not a contract;
 *   `ERR_SSE_INVALID_CONTENT` when `content` is not a source.
 *
 * @example
 * ```ts
 * return new EventSourceResponse(
 *   typedSource(jobEvents, async function* ({ signal }) {
 *     for (let percent = 0; percent < 100 && !signal.aborted; percent += 10) {
 *       yield { event: 'progress', data: { percent } }
 *       await sleep(100)
 *     }
 *     yield { event: 'done', data: { url: '/report.pdf' } }
 *   }),
 *   { request },
 * )
 * ```
 */
export function typedSource<C extends AnyContract, Req = unknown>(
  contract: C,
  content: ContractContent<C, Req>,
): Content<Req> {
  const checked = checkContract(contract)
  if (typeof content !== 'function') return bind(checked, content)
  return (ctx) => {
    const source = content(ctx)
    return isPromise(source) ? source.then((ready) => bind(checked, ready)) : bind(checked, source)
  }
}
