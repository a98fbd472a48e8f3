/**
 * The broadcaster's cache of decoded events: a broker message becomes one `ServerSentEvent`
 * per process, whose encoded text every subscriber then shares. Recent ones are kept, so a
 * replay of the same history to many reconnecting clients decodes and encodes each event once.
 *
 * Bounded in count and in text, oldest out first, so large events cannot make it hold much.
 *
 * @internal
 * @module
 */

import type { ServerSentEvent } from '../encoder/encode.ts'
import type { BrokerMessage } from './broker.ts'
import { formatEventId } from './event-id.ts'
import { fromPayload } from './payload.ts'

const MAX_EVENTS = 4096
const MAX_CHARS = 4 * 1024 * 1024

/** Roughly how much text an event holds, for the bound. */
const weight = (event: ServerSentEvent) =>
  (event.data?.length ?? 0) + (event.comment?.length ?? 0) + 32

/** Recent decoded events by id; see the module comment. @internal */
export class DecodedEvents {
  readonly #events = new Map<string, ServerSentEvent>()
  #chars = 0

  /** The shared event for `message`. Throws for a payload no broadcaster made. */
  decode(message: BrokerMessage): ServerSentEvent {
    const id = formatEventId(message.epoch, message.seq)
    let event = this.#events.get(id)
    if (event) return event
    event = fromPayload(message.payload, id)
    this.#events.set(id, event)
    this.#chars += weight(event)
    // Oldest first: Map iteration follows insertion order.
    for (const [key, old] of this.#events) {
      if (this.#events.size <= MAX_EVENTS && this.#chars <= MAX_CHARS) break
      this.#events.delete(key)
      this.#chars -= weight(old)
    }
    return event
  }
}
