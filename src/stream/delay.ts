/**
 * Durations and timers: checks a duration option against what a timer can actually wait, and
 * keeps a timer from holding the process open.
 *
 * @internal
 * @module
 */

import { invalidOption } from '../errors.ts'

/**
 * The longest delay `setTimeout` honours: 2^31 - 1 ms (about 24.8 days). Longer delays are not
 * rejected by the runtime but silently *replaced by 1 ms* (Node prints a TimeoutOverflowWarning),
 * so `ping: 3e9` would ping every millisecond and `sendTimeout: 3e9` would drop every stream
 * whose write blocks at all.
 */
export const MAX_DELAY = 2_147_483_647

/** Throws `ERR_SSE_INVALID_OPTION` unless `value` is a finite number from 0 to {@link MAX_DELAY}. */
export function checkDelay(name: string, value: unknown, alternative = ''): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_DELAY) {
    invalidOption(
      name,
      `a non-negative number of milliseconds, at most ${MAX_DELAY} (the longest timer)${alternative}`,
      value,
    )
  }
  return value
}

/** Keeps a timer from holding the process open, where the runtime supports it. */
export function unref(timer: unknown): void {
  ;(timer as { unref?: () => void }).unref?.()
}
