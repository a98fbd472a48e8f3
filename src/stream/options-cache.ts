/**
 * Resolved stream options, kept per options object.
 *
 * Options objects are usually made once and passed to every stream (a module constant, an
 * adapter's defaults): their resolution is kept here, so thousands of streams share one frozen
 * object instead of one each. Measured with the `idle` scenario of `npm run bench` (heap per
 * connection): ~0.15 KiB per idle stream. Weak: an entry goes with its options object.
 *
 * An object changed after its first use (a key added, a value replaced) is resolved again, so
 * a cached answer is never stale.
 *
 * @internal
 * @module
 */

import { allowsShortDurations } from '../util/delay.ts'

/** A resolved options object and the options it was made from, to notice a change. */
interface Resolution {
  readonly keys: string[]
  readonly values: unknown[]
  /** Whether the options carried the `shortDurations()` mark (a symbol: not among `keys`). */
  readonly short: boolean
  readonly resolved: unknown
}

const resolutions = new WeakMap<object, Resolution>()

function unchanged(options: object, resolution: Resolution): boolean {
  const keys = Object.keys(options)
  if (keys.length !== resolution.keys.length) return false
  if (allowsShortDurations(options) !== resolution.short) return false
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    if (key !== resolution.keys[i]) return false
    if ((options as Record<string, unknown>)[key] !== resolution.values[i]) return false
  }
  return true
}

/**
 * The result of `resolve()` for `options`: computed on the first call, and again only when the
 * object has changed since. `resolve` must depend on nothing but `options`.
 */
export function resolveOnce<T>(options: object, resolve: () => T): T {
  const known = resolutions.get(options)
  if (known && unchanged(options, known)) return known.resolved as T
  const resolved = resolve()
  const keys = Object.keys(options)
  const values = keys.map((key) => (options as Record<string, unknown>)[key])
  resolutions.set(options, { keys, values, short: allowsShortDurations(options), resolved })
  return resolved
}
