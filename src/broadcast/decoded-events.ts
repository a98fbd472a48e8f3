/**
 * The broadcaster's cache of decoded events: a broker message becomes one `ServerSentEvent`
 * per process, whose encoded bytes every subscriber then shares. Recent ones are kept, so a
 * replay of the same history to many reconnecting clients decodes and encodes each event once.
 *
 * Bounded in count and in text, oldest out first, so large events cannot make it hold much.
 *
 * @internal
 * @module
 */

import type { ServerSentEvent } from '../encoder/encode.ts'
import { Deque } from '../util/deque.ts'
import type { BrokerMessage } from './broker.ts'
import { formatEventId } from './event-id.ts'
import { fromPayload, withId } from './payload.ts'

const MAX_EVENTS = 4096
const MAX_CHARS = 4 * 1024 * 1024

/** Roughly how much text an event holds, for the bound. */
const weight = (event: ServerSentEvent) =>
  (event.data?.length ?? 0) + (event.comment?.length ?? 0) + 32

/** Recent decoded events by position; see the module comment. @internal */
export class DecodedEvents {
  /** By `seq`, within `#epoch` (a number key hashes for free; a new epoch empties it). */
  readonly #events = new Map<number, ServerSentEvent>()
  #epoch = ''
  /**
   * The seqs in the order they were added, to evict the oldest. Not the Map's own order: a Map
   * keeps a hole for each deleted entry until it is rebuilt, and reading its first entry walks
   * them all, which measured 10 % of a broadcaster's CPU at 100 000 publishes.
   */
  readonly #order = new Deque<number>()
  #chars = 0
  /** The payload being published here and its checked event: see {@link DecodedEvents.publishing}. */
  #localPayload: string | undefined
  #localEvent: ServerSentEvent | undefined

  /**
   * Notes the payload this process is publishing and the event it was made from, until called
   * with `undefined`. A message with this payload decodes from the event's fields without
   * parsing the payload again: the in-process broker delivers during `publish` (measured: the
   * parse and its checks were 5 % of a broadcaster's CPU with one publish per subscriber).
   */
  publishing(payload: string | undefined, event: ServerSentEvent | undefined): void {
    this.#localPayload = payload
    this.#localEvent = event
  }

  /** The shared event for `message`. Throws for a payload no broadcaster made. */
  decode(message: BrokerMessage): ServerSentEvent {
    if (message.epoch !== this.#epoch) this.#startEpoch(message.epoch)
    let event = this.#events.get(message.seq)
    if (event) return event
    // Every subscriber of the process writes it: its bytes are encoded once, for all of them.
    const id = formatEventId(message.epoch, message.seq)
    event = (
      message.payload === this.#localPayload
        ? withId(this.#localEvent!, id)
        : fromPayload(message.payload, id)
    ).share()
    this.#events.set(message.seq, event)
    this.#order.push(message.seq)
    this.#chars += weight(event)
    while (this.#events.size > MAX_EVENTS || this.#chars > MAX_CHARS) {
      const oldest = this.#order.shift()!
      this.#chars -= weight(this.#events.get(oldest)!)
      this.#events.delete(oldest)
    }
    return event
  }

  #startEpoch(epoch: string): void {
    this.#events.clear()
    this.#order.clear()
    this.#chars = 0
    this.#epoch = epoch
  }
}
