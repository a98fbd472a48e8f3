/**
 * A `fetch`-based Server-Sent Events client: any method, body and headers, reconnects that
 * resume from `Last-Event-ID`, backoff with jitter, `Retry-After`, an idle timeout, and a way for
 * the server to end a stream for good. Web APIs only (no `node:` import): browsers, Node, Bun,
 * Deno, Workers. Parsing is done by `eventsource-parser`. See `docs/client.md`.
 *
 * @module
 */

export { connect, type TypedConnectOptions } from './client/connect.ts'
export { EventStream } from './client/event-stream.ts'
export type { ConnectInfo, ConnectOptions, ReplayableBody } from './client/options.ts'
export type { OvenControlEvent, TypedClientEvent } from './client/typed.ts'
export type {
  ClientCloseInfo,
  ClientCloseReason,
  ClientEvent,
  ClientState,
  ConnectFailure,
  FailureKind,
} from './client/types.ts'
export { isSseError, SseError, type SseErrorCode } from './errors.ts'
