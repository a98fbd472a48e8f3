/**
 * Typed events from a contract: the data of each event parsed from JSON and, when the contract
 * validates, checked by the event's schema — the same contract the server streams with, so a
 * renamed field fails loudly at the first event instead of silently in the page.
 *
 * Oven's own control events pass through every contract, typed, with their JSON data parsed:
 * `oven-end` (the last event of a run) and `oven-reset` (a broadcast position that cannot be
 * resumed). Their names mirror `END_EVENT` and `RESET_EVENT` (a test holds them equal); they are
 * written out here so that the client does not import the server's runs and broadcasting code.
 *
 * @module
 */

import {
  type AnyContract,
  type ContractData,
  type ContractEventName,
  checkContract,
  isPromise,
  validateEvent,
} from '../contracts/contract.ts'
import { describe, SseError } from '../errors.ts'
import type { EventMapper } from './event-stream.ts'
import type { ClientEvent } from './types.ts'

/** The type of the last event of an Oven run (`END_EVENT`). */
export const CLIENT_END_EVENT = 'oven-end'
/** The type of the event a broadcast subscriber gets when it cannot resume (`RESET_EVENT`). */
export const CLIENT_RESET_EVENT = 'oven-reset'

/** Oven's control events, as a typed client delivers them. */
export type OvenControlEvent =
  | (ClientEvent<{ reason: 'done' | 'failed' | 'stopped' | 'unknown' }> & {
      readonly event: typeof CLIENT_END_EVENT
    })
  | (ClientEvent<{ reason: 'expired' | 'lost' | 'invalid'; topics: string[] }> & {
      readonly event: typeof CLIENT_RESET_EVENT
    })

/**
 * One event of contract `C` as the client delivers it: a union with one member per event name,
 * so that narrowing on `event` types `data`; plus Oven's control events.
 */
export type TypedClientEvent<C extends AnyContract> =
  | {
      [K in ContractEventName<C>]: ClientEvent<ContractData<C, K>> & { readonly event: K }
    }[ContractEventName<C>]
  | OvenControlEvent

function parseJson(event: ClientEvent): unknown {
  try {
    return JSON.parse(event.data)
  } catch (cause) {
    throw new SseError(
      'ERR_SSE_INVALID_DATA',
      `Invalid data for event "${event.event}": expected JSON (the data of a contract's ` +
        `events is JSON), received ${describe(event.data)}.`,
      { cause },
    )
  }
}

/**
 * The mapper of a contract: JSON data, the event name checked against the contract, the data
 * through its schema (unless the contract says `validate: false`). Throws `ERR_SSE_INVALID_EVENT`
 * for a name not in the contract, `ERR_SSE_INVALID_DATA` for data that is not JSON or that the
 * schema rejects (its `cause` holds the schema's issues).
 *
 * @internal
 */
export function contractMapper<C extends AnyContract>(
  contract: C,
): EventMapper<TypedClientEvent<C>> {
  checkContract(contract)
  return (event) => {
    const data = parseJson(event)
    if (event.event === CLIENT_END_EVENT || event.event === CLIENT_RESET_EVENT) {
      return { ...event, data } as TypedClientEvent<C>
    }
    const checked = validateEvent(contract, { event: event.event, data })
    if (isPromise(checked)) {
      return checked.then((ready) => ({ ...event, data: ready.data }) as TypedClientEvent<C>)
    }
    return { ...event, data: checked.data } as TypedClientEvent<C>
  }
}
