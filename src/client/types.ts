/**
 * What the client hands to the application: events, the reasons a stream ended, the failures it
 * may retry.
 *
 * @module
 */

import type { SseError } from '../errors.ts'

/** One event, as the client delivers it; `Data` is `string` unless a contract parses it. */
export interface ClientEvent<Data = string> {
  /** The event's type: its `event:` field, or `'message'` when it has none (as `EventSource`). */
  readonly event: string
  /**
   * The event's data: its `data:` lines joined with `\n`; with a `contract`, that text parsed
   * as JSON (and validated when the contract validates).
   */
  readonly data: Data
  /** The event's own `id:` field, or `undefined` when it carried none. */
  readonly id: string | undefined
  /**
   * The stream's position after this event: its own id, or the last id before it (as
   * `MessageEvent.lastEventId`). Save this to resume from here after a page reload.
   */
  readonly lastEventId: string
}

/** Where a stream's connection is; see {@link EventStream.state}. */
export type ClientState = 'connecting' | 'open' | 'waiting' | 'closed'

/**
 * Why a stream ended for good:
 * - `'end-event'` — an event named in `endEvents` arrived (Oven's runs end with `oven-end`);
 * - `'no-content'` — the server answered `204 No Content`, the HTML spec's way to say "stop";
 * - `'aborted'` — `close()`, the `signal` option, or a `break` out of the `for await` loop;
 * - `'error'` — a failure the client does not retry (see `error`).
 */
export type ClientCloseReason = 'end-event' | 'no-content' | 'aborted' | 'error'

/** How a stream ended: what `closed` resolves with and `onClose` receives. */
export interface ClientCloseInfo {
  readonly reason: ClientCloseReason
  /**
   * The failure, when `reason` is `'error'`: an {@link SseError} for a failed connection (the
   * last one, when retries ran out), or whatever your callback, `shouldRetry` or contract threw.
   */
  readonly error?: unknown
  /** The last event id: where a new stream would resume. */
  readonly lastEventId: string
}

/**
 * Why one connection attempt failed:
 * - `'network'` — `fetch` failed, or the connection broke while reading (`cause` has the error);
 * - `'status'` — the server answered something other than 2xx (`status`, `response`);
 * - `'content-type'` — a 2xx that is not `text/event-stream` (a login page, a proxy's error page);
 * - `'idle'` — nothing arrived (not an event, not a comment) for `idleTimeout` ms;
 * - `'ended'` — the server ended the response cleanly; `EventSource` reconnects then too;
 * - `'too-large'` — one event grew past `maxEventSize` characters.
 */
export type FailureKind = 'network' | 'status' | 'content-type' | 'idle' | 'ended' | 'too-large'

/** One failed connection, as `shouldRetry` and `onReconnecting` see it. */
export interface ConnectFailure {
  readonly kind: FailureKind
  /** The failure as an error (code `ERR_SSE_CONNECTION`, `ERR_SSE_RESPONSE` or `ERR_SSE_TIMEOUT`). */
  readonly error: SseError
  /** The response, for `'status'` and `'content-type'` (its body is already cancelled). */
  readonly response: Response | undefined
  /** The response status, or `undefined` when there was no response. */
  readonly status: number | undefined
  /** Consecutive failures so far, this one included: 1 after the first. */
  readonly attempt: number
  /**
   * What the client does by default: the delay in ms before it reconnects, or `undefined` when
   * it would give up (a 4xx other than 408 and 429, a non-event-stream 2xx, an event too large,
   * `maxRetries` reached).
   */
  readonly delay: number | undefined
}
