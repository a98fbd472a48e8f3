/**
 * Helpers for testing your own event streams: read a `Response` or a URL into parsed events.
 * Parses with `eventsource-parser`, a dependency of Oven's (the client's parser too).
 *
 * @module
 */

export { shortDurations } from './testing/durations.ts'
export {
  iterateEvents,
  iterateMessages,
  type ReadOptions,
  type ReadTimeoutError,
  readEvents,
  readMessages,
  type SseEvent,
  type SseMessage,
} from './testing/read-events.ts'
