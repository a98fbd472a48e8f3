/**
 * How long the client waits before it reconnects: exponential backoff with jitter and a cap,
 * and the server's own word when it gives one (`retry:` in the stream, `Retry-After` on a 503 or
 * a 429). Pure functions of their inputs (the random number and the clock are passed in), so
 * the tests check every rule without waiting.
 *
 * @module
 */

/** The backoff settings, already checked. @internal */
export interface BackoffSettings {
  /** The first delay; the server's `retry:` replaces it, as in `EventSource`. */
  readonly initial: number
  /** No computed delay is longer. */
  readonly max: number
  /** The share of each delay taken off at random: 0 (none) to 1 (anything from 0 to the delay). */
  readonly jitter: number
}

/**
 * The wait before reconnection number `attempt` (1 for the first reconnect after a success):
 * `base × 2^(attempt − 1)`, capped at `max`, then shortened by up to `jitter` of itself at
 * random, so clients dropped together (a server restart) do not all come back together.
 *
 * @param base - the server's last `retry:` value, or `settings.initial`.
 * @param random - a number in [0, 1), `Math.random()` outside tests.
 */
export function backoffDelay(
  attempt: number,
  base: number,
  settings: BackoffSettings,
  random: number,
): number {
  // 2 ** 31 already exceeds every possible cap: stop doubling there so the value stays finite.
  const exponent = Math.min(Math.max(attempt - 1, 0), 31)
  const delay = Math.min(settings.max, base * 2 ** exponent)
  return Math.round(delay * (1 - settings.jitter * random))
}

/**
 * The delay a `Retry-After` header asks for, in ms (RFC 9110 §10.2.3): a whole number of
 * seconds, or an HTTP date. `undefined` when the header is absent or is neither (then the
 * ordinary backoff applies); a date in the past is 0.
 *
 * @param now - `Date.now()` outside tests.
 */
export function retryAfterDelay(header: string | null, now: number): number | undefined {
  if (header === null) return undefined
  const text = header.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  // An HTTP date names its day and month; without letters (`-5`, `1.5`) it is neither form,
  // however `Date.parse` would read it.
  if (!/[a-z]/i.test(text)) return undefined
  const date = Date.parse(text)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, date - now)
}
