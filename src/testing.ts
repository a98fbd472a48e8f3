/**
 * Helpers for testing your own event streams: read a `Response` or a URL into parsed events.
 * Needs the optional peer dependency `eventsource-parser`.
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
