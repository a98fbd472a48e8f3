/**
 * Header lists for the framework adapters: headers a framework collected before the stream,
 * merged with the `headers` option.
 *
 * @internal
 * @module
 */

import type { HeadersInput } from '../stream/types.ts'

/** Header pairs from any {@link HeadersInput}, repeated names kept. */
export function headerPairs(input: HeadersInput | undefined): Array<[string, string]> {
  const out: Array<[string, string]> = []
  if (input === undefined || input === null) return out
  if (Array.isArray(input)) {
    for (const [name, value] of input as ReadonlyArray<readonly [string, string]>) {
      out.push([name, String(value)])
    }
  } else if (typeof (input as Headers).forEach === 'function') {
    ;(input as Headers).forEach((value, name) => {
      out.push([name, value])
    })
  } else {
    for (const [name, value] of Object.entries(input)) {
      if (value === undefined) continue
      if (Array.isArray(value)) for (const item of value) out.push([name, String(item)])
      else out.push([name, String(value)])
    }
  }
  return out
}

/**
 * Headers a framework collected before the stream (`reply.header()`), overridden name by name
 * by the `headers` option.
 */
export function mergeHeaders(
  base: HeadersInput | undefined,
  own: HeadersInput | undefined,
): Array<[string, string]> {
  const ownPairs = headerPairs(own)
  const overridden = new Set(ownPairs.map(([name]) => name.toLowerCase()))
  return [...headerPairs(base).filter(([name]) => !overridden.has(name.toLowerCase())), ...ownPairs]
}
