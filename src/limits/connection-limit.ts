/**
 * Connection limits: how many event streams may be open at once, in all and per key (a user,
 * an IP address, a tenant). Past a limit the client gets `503 Service Unavailable` with a
 * `Retry-After` header and the stream's source is never started.
 *
 * Web-standard: no `node:` imports.
 *
 * @module
 */

import { limitReject } from '../diagnostics/channels.ts'
import {
  checkLimits,
  type KeyFunction,
  LIMIT_OPTIONS,
  type Limiter,
  type ReleaseSlot,
  readKey,
  retryAfterHeader,
} from './limiter.ts'
import { plainAnswerHeaders } from './refusal.ts'

export type { ReleaseSlot } from './limiter.ts'

/** Options of {@link ConnectionLimiter}. */
export interface ConnectionLimitOptions<Req = unknown> {
  /**
   * The most streams open at once through this limiter, all keys together.
   * @defaultValue no limit
   */
  max?: number | undefined
  /**
   * The most streams open at once for one key (see `key`). Needs `key`.
   * @defaultValue no limit
   */
  maxPerKey?: number | undefined
  /**
   * Names who a stream belongs to, from its request: a user id, an IP address, a tenant. A
   * stream whose key is `undefined` counts only against `max`. Called once per stream, before
   * anything is sent; if it throws, the stream is not opened and the error propagates as a
   * content function's would.
   *
   * On Node the request is the `IncomingMessage` (`req.socket.remoteAddress` is the peer's IP;
   * behind a proxy use the address your proxy forwards). On the web path it is the `request`
   * option (`undefined` if you did not pass one).
   */
  key?: ((request: Req) => string | undefined) | undefined
  /**
   * The delay suggested to a rejected client, in milliseconds (a whole number, at least 1000);
   * sent as `Retry-After` in whole seconds, rounded up.
   * @defaultValue `5000`
   */
  retryAfter?: number | undefined
}

/**
 * Counts open event streams and turns away those past a limit. Share one limiter between the
 * routes it should cover, and pass it as the `limit` option of `sendEventStream`,
 * `EventSourceResponse` or an adapter.
 *
 * A stream takes a slot before its response head is written and gives it back exactly once
 * when it ends, for whatever reason (done, disconnect, shutdown, timeout, error). Past the
 * limit, the client gets `503` with `Retry-After`, a short `text/plain` body, your extra
 * `headers` (so CORS headers still reach the browser), and the stream closes with reason
 * `rejected` without calling your content function.
 *
 * On the web path the slot is taken when the `EventSourceResponse` is constructed (a Response's
 * status is fixed then): build the response only to return it, since one that is never sent
 * keeps its slot.
 *
 * Note that a browser's `EventSource` does not retry after a non-200 answer: it fires `error`
 * and stays closed. Reconnect from your `onerror` handler with a backoff (honouring the
 * `Retry-After` you chose), or use a client that does.
 *
 * @example
 * ```ts
 * import type { IncomingMessage } from 'node:http'
 * import { ConnectionLimiter } from 'oven-sse'
 * import { sendEventStream } from 'oven-sse/node'
 *
 * // Typed with the request your framework hands you (web path: `ConnectionLimiter<Request>`).
 * const limit = new ConnectionLimiter<IncomingMessage>({
 *   max: 10_000,
 *   maxPerKey: 6,
 *   key: (req) => req.socket.remoteAddress,
 *   retryAfter: 10_000,
 * })
 * app.get('/events', (req, res) => sendEventStream(req, res, source(), { limit }))
 * ```
 */
export class ConnectionLimiter<Req = unknown> implements Limiter<Req> {
  /** The most streams open at once; `Infinity` when unlimited. */
  readonly max: number
  /** The most streams open at once per key; `Infinity` when unlimited. */
  readonly maxPerKey: number
  /** The suggested retry delay in ms; see {@link ConnectionLimitOptions.retryAfter}. */
  readonly retryAfter: number
  // Held as a method type so that `ConnectionLimiter<Request>` fits where the web path's options
  // say `ConnectionLimiter<Request | undefined>` (its `request` option is optional): like the
  // methods, the key function is compared bivariantly.
  readonly #key: KeyFunction<Req> | undefined
  #open = 0
  // Only keys with open streams are kept, so the map is bounded by the open streams.
  readonly #perKey = new Map<string, number>()

  /**
   * @param options - see {@link ConnectionLimitOptions}.
   * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` for a bad limit, or `maxPerKey` without
   *   `key`.
   */
  constructor(options: ConnectionLimitOptions<Req> = {}) {
    const limits = checkLimits('ConnectionLimiter', options, LIMIT_OPTIONS)
    this.max = limits.max
    this.maxPerKey = limits.maxPerKey
    this.#key = limits.key
    this.retryAfter = limits.retryAfter
  }

  /** How many streams hold a slot now. */
  get size(): number {
    return this.#open
  }

  /** How many streams hold a slot under `key` now. */
  count(key: string): number {
    return this.#perKey.get(key) ?? 0
  }

  /**
   * Whether a stream of `request` would get a slot now; takes none. For helpers that must do
   * work before the stream is made (and should skip it when the answer will be a 503).
   *
   * @throws as {@link ConnectionLimiter.acquire} does.
   */
  admits(request: Req): boolean {
    if (this.#open >= this.max) return false
    const key = this.#keyOf(request)
    return key === undefined || this.count(key) < this.maxPerKey
  }

  /**
   * Takes a slot for the stream of `request`.
   *
   * @returns a function that gives the slot back (idempotent), or `undefined` when a limit is
   *   reached.
   * @throws what `key` throws, or {@link SseError} when it returns something other than a
   *   string or `undefined`.
   */
  acquire(request: Req): ReleaseSlot | undefined {
    if (this.#open >= this.max) {
      if (limitReject.hasSubscribers) {
        limitReject.publish({ limit: 'max', key: undefined, request })
      }
      return undefined
    }
    const key = this.#keyOf(request)
    const held = key === undefined ? 0 : this.count(key)
    if (key !== undefined && held >= this.maxPerKey) {
      if (limitReject.hasSubscribers) limitReject.publish({ limit: 'maxPerKey', key, request })
      return undefined
    }
    this.#open++
    if (key !== undefined) this.#perKey.set(key, held + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      this.#open--
      if (key === undefined) return
      const left = this.count(key) - 1
      if (left > 0) this.#perKey.set(key, left)
      else this.#perKey.delete(key)
    }
  }

  #keyOf(request: Req): string | undefined {
    return readKey('ConnectionLimiter', this.#key, request)
  }

  /** The `Retry-After` header value: whole seconds, rounded up. */
  get retryAfterHeader(): string {
    return retryAfterHeader(this.retryAfter)
  }
}

/** The body of a 503 answer: says what happened, nothing about the server's internals. */
export const REJECTION_BODY = 'Too many open event streams; retry later.\n'

/**
 * The head of a 503 answer (`retryAfter` from {@link ConnectionLimiter.retryAfterHeader}): a
 * plain-text answer with `Retry-After` (see `plainAnswerHeaders`); a rejection is never cached.
 *
 * @internal
 */
export function rejectionHeaders(
  retryAfter: string,
  streamHead: ReadonlyArray<readonly [string, string]>,
): Array<[string, string]> {
  return plainAnswerHeaders(streamHead, [['Retry-After', retryAfter]])
}
