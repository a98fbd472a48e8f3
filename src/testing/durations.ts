/**
 * The explicit way for tests to use short durations.
 *
 * @module
 */

import { SHORT_DURATIONS } from '../util/delay.ts'

/**
 * Lets the duration options of `options` go down to 1 ms, for tests that cannot wait seconds
 * for a ping, a send timeout or a forced close. Outside tests, `ping`, `sendTimeout`,
 * `maxDuration`, `forceAfter`, `retryAfter` and `historyTtl` must be at least 1000 ms: a
 * smaller value is almost always seconds written where milliseconds belong (`ping: 10`), and is
 * refused.
 *
 * Returns a copy of `options` carrying a mark (a symbol property, so it survives `{ ...options }`)
 * that stream options, `installShutdownHandlers`, `ConnectionLimiter` and `Broadcaster` read.
 * Every duration must still be a whole number of milliseconds, at least 1 (or 0 where 0 means
 * "off").
 *
 * @example
 * ```ts
 * import { shortDurations } from 'oven-sse/testing'
 *
 * const response = new EventSourceResponse(source, shortDurations({ ping: 20, sendTimeout: 200 }))
 * ```
 */
export function shortDurations<T extends object>(options: T): T {
  return { ...options, [SHORT_DURATIONS]: true }
}
