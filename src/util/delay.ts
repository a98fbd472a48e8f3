/**
 * Durations and timers: one check for every duration option, and a way to keep a timer from
 * holding the process open.
 *
 * Every duration is a whole number of milliseconds, like `setTimeout`. A value is refused when it
 * can only be a mistake:
 *
 * - not a finite number, or a fraction (`ping: 1e-13` made `now + ping === now`: the keep-alive
 *   timer fired for ever without time passing; `ping: 0.5` is half a second written in seconds);
 * - above {@link MAX_DELAY} (a timer would silently wait 1 ms instead);
 * - for the options that sse-starlette, uvicorn and HTTP headers count in *seconds*, below one
 *   second: `ping: 10`, `sendTimeout: 30` are those habits, and as milliseconds they cost an idle
 *   client kilobytes of pings a second or drop a healthy one on a single lost packet. Tests that
 *   need short intervals say so explicitly with `shortDurations()` from `oven-sse/testing`.
 *
 * @internal
 * @module
 */

import { describe, SseError } from '../errors.ts'

/**
 * The longest delay `setTimeout` honours: 2^31 - 1 ms (about 24.8 days). Longer delays are not
 * rejected by the runtime but silently *replaced by 1 ms* (Node prints a TimeoutOverflowWarning),
 * so `ping: 3e9` would ping every millisecond and `sendTimeout: 3e9` would drop every stream
 * whose write blocks at all.
 */
export const MAX_DELAY = 2_147_483_647

/**
 * The mark `shortDurations()` (from `oven-sse/testing`) puts on an options object: its duration
 * options may go down to 1 ms. A registered symbol, so two installed copies agree; enumerable, so
 * it survives `{ ...options }` (adapters merge options that way).
 */
export const SHORT_DURATIONS: unique symbol = Symbol.for('oven-sse.shortDurations')

/** Whether `options` carries the {@link SHORT_DURATIONS} mark. */
export function allowsShortDurations(options: unknown): boolean {
  return (
    typeof options === 'object' &&
    options !== null &&
    (options as Record<symbol, unknown>)[SHORT_DURATIONS] === true
  )
}

/** What a duration option accepts, besides a whole number of ms up to {@link MAX_DELAY}. */
export interface DurationRule {
  /**
   * The least value outside tests. Above 1 for the options people write in seconds elsewhere;
   * with the {@link SHORT_DURATIONS} mark the least value is 1.
   */
  readonly min: number
  /** What `0` means, as the error message says it ("to disable"); omitted: `0` is refused. */
  readonly zero?: string
}

/**
 * A wait with no cost to clients (a shutdown grace, a test helper's timeout): any whole number
 * of ms, `0` for none. A short farewell window is legitimate; it only ends a stream sooner.
 */
export const ANY_WAIT: DurationRule = { min: 1, zero: 'for none' }

/**
 * Checks a duration option and returns it. Throws `ERR_SSE_INVALID_OPTION` naming the option,
 * the unit, the accepted range and — for a value that reads as seconds — the likely intent:
 * `Invalid option "ping": expected a whole number of milliseconds from 1000 to 2147483647, or 0
 * to disable (did you mean 10000 for 10 s?), received number 10.`
 *
 * @param short - the options carry the {@link SHORT_DURATIONS} mark: the least value is 1 ms.
 */
export function checkDelay(
  name: string,
  value: unknown,
  rule: DurationRule = ANY_WAIT,
  short = false,
): number {
  const min = short ? 1 : rule.min
  if (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    value <= MAX_DELAY &&
    (value >= min || (value === 0 && rule.zero !== undefined))
  ) {
    return value === 0 ? 0 : value // -0 becomes 0
  }
  let expected = `a whole number of milliseconds from ${min} to ${MAX_DELAY}`
  if (rule.zero !== undefined) expected += `, or 0 ${rule.zero}`
  let message = `Invalid option "${name}": expected ${expected}`
  if (typeof value === 'number' && value > 0 && Number.isFinite(value)) {
    // Seconds written where milliseconds belong: say what the value would be in ms.
    const ms = value * 1000
    if (Number.isInteger(ms) && ms >= min && ms <= MAX_DELAY) {
      message += ` (did you mean ${ms} for ${value} s?)`
    }
  }
  message += `, received ${describe(value)}.`
  if (!short && rule.min > 1 && typeof value === 'number' && value >= 1 && value < rule.min) {
    message +=
      ` Values below ${rule.min} ms are for tests only: wrap the options in shortDurations() ` +
      `from "oven-sse/testing".`
  }
  throw new SseError('ERR_SSE_INVALID_OPTION', message)
}

/** Keeps a timer from holding the process open, where the runtime supports it. */
export function unref(timer: unknown): void {
  ;(timer as { unref?: () => void }).unref?.()
}
