/**
 * What a connection limiter is to the transports, and the options every limiter shares.
 *
 * Two limiters fit: `ConnectionLimiter` counts the streams of one process and answers at once;
 * `RedisConnectionLimiter` (`oven-sse/redis`) counts them across every instance that shares a
 * Redis and answers with a promise. A transport asks {@link Limiter.acquire} and looks at what
 * came back: a slot or nothing now, or a promise of either (see {@link isPending}).
 *
 * Web-standard: no `node:` imports.
 *
 * @module
 */

import { checkOptionNames, describe, invalidOption, SseError } from '../errors.ts'
import { allowsShortDurations, checkDelay } from '../util/delay.ts'

/** Gives back a slot taken by {@link Limiter.acquire}. Calling it again does nothing. */
export type ReleaseSlot = () => void

/** What {@link Limiter.acquire} answers: a slot (its release), `undefined` past a limit. */
export type Admission = ReleaseSlot | undefined

/**
 * A connection limiter: what the `limit` option of `sendEventStream`, `EventSourceResponse`,
 * `openEventSourceResponse` and the adapters accepts. `ConnectionLimiter` (one process) and
 * `RedisConnectionLimiter` (every instance sharing a Redis, from `oven-sse/redis`) are the two
 * Oven provides.
 *
 * A limiter whose `acquire` answers with a promise works with `sendEventStream`, the Node
 * adapters (Express, Koa, Fastify), `openEventSourceResponse` and the web adapters (Hono, h3,
 * Elysia), which wait for it before anything is sent. `new EventSourceResponse(...)` cannot
 * wait (a `Response`'s status is fixed by its constructor) and throws `ERR_SSE_INVALID_OPTION`
 * for such a limiter, naming `openEventSourceResponse` instead.
 *
 * @example
 * ```ts
 * import { ConnectionLimiter, type Limiter } from 'oven-sse'
 *
 * // One process by default; swap in a RedisConnectionLimiter for the whole cluster.
 * const limit: Limiter<Request> = new ConnectionLimiter<Request>({ max: 10_000 })
 * ```
 */
export interface Limiter<Req = unknown> {
  /** The `Retry-After` header of a `503`: whole seconds. */
  readonly retryAfterHeader: string
  /**
   * Takes a slot for the stream of `request`: its release function, or `undefined` when a
   * limit is reached — or a promise of either. Throws (or rejects) only when the request cannot
   * be judged (its `key` function failed); the stream then fails before its head.
   */
  acquire(request: Req): Admission | Promise<Admission>
  /**
   * Whether a stream of `request` would get a slot now, taking none: lets
   * `openEventSourceResponse` skip the content function of a stream that will be refused. A
   * limiter without it (an asynchronous one) is asked `acquire` before the content function
   * instead.
   */
  admits?(request: Req): boolean
}

/** Whether `acquire` answered with a promise: the transport must wait for it. */
export function isPending(admission: unknown): admission is PromiseLike<Admission> {
  return (
    typeof admission === 'object' &&
    admission !== null &&
    typeof (admission as PromiseLike<unknown>).then === 'function'
  )
}

/** Options every limiter takes; see `ConnectionLimitOptions` for their meaning. */
export interface LimitOptions<Req> {
  max?: number | undefined
  maxPerKey?: number | undefined
  key?: ((request: Req) => string | undefined) | undefined
  retryAfter?: number | undefined
}

/** `key`, typed as a method so that its parameter is bivariant (see `ConnectionLimiter`). */
export type KeyFunction<Req> = { key(request: Req): string | undefined }['key']

/** The shared options, checked. */
export interface Limits<Req> {
  /** `Infinity` when unlimited. */
  readonly max: number
  /** `Infinity` when unlimited. */
  readonly maxPerKey: number
  readonly key: KeyFunction<Req> | undefined
  readonly retryAfter: number
}

/** The options shared by every limiter, for `checkOptionNames`. */
export const LIMIT_OPTIONS = ['max', 'maxPerKey', 'key', 'retryAfter']

function limit(name: string, value: unknown): number {
  if (value === undefined) return Number.POSITIVE_INFINITY
  if (
    typeof value !== 'number' ||
    !(Number.isSafeInteger(value) || value === Number.POSITIVE_INFINITY) ||
    value < 0
  ) {
    invalidOption(name, 'a non-negative integer (a number of streams)', value)
  }
  return value
}

/**
 * Checks the shared options of limiter `owner` (its own option names are `names`).
 *
 * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` for an unknown option, a bad limit, or
 *   `maxPerKey` without `key`.
 * @internal
 */
export function checkLimits<Req>(
  owner: string,
  options: LimitOptions<Req>,
  names: readonly string[],
): Limits<Req> {
  checkOptionNames(owner, options, names)
  const max = limit('max', options.max)
  const maxPerKey = limit('maxPerKey', options.maxPerKey)
  const key = options.key
  if (key !== undefined && typeof key !== 'function') {
    invalidOption('key', 'a function (request) => string | undefined', key)
  }
  if (key === undefined && options.maxPerKey !== undefined) {
    invalidOption('key', 'a function (request) => string | undefined, since maxPerKey is set', key)
  }
  // Bounded like every duration, which also keeps the header a plain integer (no "1e+21").
  // At least 1 s outside tests: the header carries whole seconds, so `retryAfter: 5` can only
  // be seconds written where milliseconds belong.
  const retryAfter = checkDelay(
    'retryAfter',
    options.retryAfter ?? 5000,
    { min: 1000 },
    allowsShortDurations(options),
  )
  return { max, maxPerKey, key, retryAfter }
}

/**
 * The key of `request` by `key`, checked.
 *
 * @throws what `key` throws, or {@link SseError} when it returns something other than a string
 *   or `undefined`.
 * @internal
 */
export function readKey<Req>(
  owner: string,
  key: KeyFunction<Req> | undefined,
  request: Req,
): string | undefined {
  if (!key) return undefined
  const value: unknown = key(request)
  if (value !== undefined && typeof value !== 'string') {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `${owner} key(request) must return a string or undefined, received ${describe(value)}.`,
    )
  }
  return value
}

/** The `Retry-After` header value of `retryAfter` ms: whole seconds, rounded up. */
export function retryAfterHeader(retryAfter: number): string {
  return String(Math.ceil(retryAfter / 1000))
}
