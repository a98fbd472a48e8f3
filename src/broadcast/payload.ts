/**
 * How a published event travels through a broker: its checked fields as compact JSON. Every
 * instance turns it back into one `ServerSentEvent` (with the id the broker assigned), whose
 * encoded text is then shared by all of that instance's subscribers.
 *
 * @internal
 * @module
 */

import { type EventInit, type Serializer, ServerSentEvent } from '../encoder/encode.ts'
import { describe, SseError } from '../errors.ts'

/** What a broadcaster can publish: text (sent as `data`), event fields, or a `ServerSentEvent`. */
export type BroadcastItem = string | Omit<EventInit, 'id'> | ServerSentEvent

interface Wire {
  d?: string
  e?: string
  r?: number
  c?: string
}

/**
 * Checks `item` and turns it into the event it publishes (without an id). Throws at once for a
 * bad field, an unknown key, an `id` (the broadcaster assigns ids: they are what clients resume
 * from), or anything that is not an item: a Promise (a forgotten `await`) would otherwise be
 * published as an empty event that takes an id and moves every subscriber's position with
 * nothing delivered.
 */
export function toEvent(item: unknown, serialize: Serializer | undefined): ServerSentEvent {
  let event: ServerSentEvent
  if (typeof item === 'string') {
    event = new ServerSentEvent({ data: item })
  } else if (item instanceof ServerSentEvent) {
    event = item
  } else if (typeof item === 'object' && item !== null && !ArrayBuffer.isView(item)) {
    // Only a plain object passes the encoder's checks; anything else (a Promise, a Date, an
    // array...) throws ERR_SSE_INVALID_EVENT naming what it is.
    event = new ServerSentEvent(item as EventInit, { serialize })
  } else {
    throw new SseError(
      'ERR_SSE_INVALID_EVENT',
      'Invalid broadcast item: expected a string, an event object or a ServerSentEvent, ' +
        `received ${describe(item)}.`,
    )
  }
  if (event.id !== undefined) {
    throw new SseError(
      'ERR_SSE_INVALID_EVENT',
      `Invalid broadcast item: it has an id (${describe(event.id)}), but the broadcaster ` +
        'assigns ids itself (they are the positions clients resume from). Remove the id.',
    )
  }
  return event
}

/** The broker payload of an event made by {@link toEvent}. */
export function toPayload(event: ServerSentEvent): string {
  const wire: Wire = {}
  if (event.data !== undefined) wire.d = event.data
  if (event.event !== undefined) wire.e = event.event
  if (event.retry !== undefined) wire.r = event.retry
  if (event.comment !== undefined) wire.c = event.comment
  return JSON.stringify(wire)
}

/** The event {@link toEvent} made, carrying `id`: what {@link fromPayload} gives, without parsing. */
export function withId(event: ServerSentEvent, id: string): ServerSentEvent {
  const { data, retry, comment } = event
  return new ServerSentEvent({ id, data, event: event.event, retry, comment })
}

/** Turns a payload back into an event carrying `id`. Throws for a payload it did not make. */
export function fromPayload(payload: string, id: string): ServerSentEvent {
  const wire = JSON.parse(payload) as Wire
  if (typeof wire !== 'object' || wire === null) {
    throw new SseError('ERR_SSE_BROKER', `Broker payload is not an event: ${describe(payload)}.`)
  }
  return new ServerSentEvent({ id, data: wire.d, event: wire.e, retry: wire.r, comment: wire.c })
}
