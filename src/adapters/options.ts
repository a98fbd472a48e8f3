/**
 * Small helpers the framework adapters share: merging option sets and header lists, and
 * showing a content function the framework's own request object.
 *
 * @internal
 * @module
 */

import type { ConnectionLimiter } from '../limits/connection-limit.ts'
import type { Content, HeadersInput, StreamContext, StreamOptions } from '../stream/types.ts'

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

/**
 * Wraps a content function (and a `dataSender`) so it sees `request` as `ctx.request`, the
 * framework's own request object, instead of the Node or web request underneath.
 */
export function withRequest<From, To>(content: Content<To>, request: To): Content<From> {
  if (typeof content !== 'function') return content
  return (ctx: StreamContext<From>) => content(swap(ctx, request))
}

/** The same wrapping for `dataSender`. */
export function senderWithRequest<From, To>(
  dataSender: StreamOptions<To>['dataSender'],
  request: To,
): StreamOptions<From>['dataSender'] {
  if (typeof dataSender !== 'function') return dataSender
  return (ctx: StreamContext<From>) => dataSender(swap(ctx, request))
}

function swap<From, To>(ctx: StreamContext<From>, request: To): StreamContext<To> {
  return { signal: ctx.signal, lastEventId: ctx.lastEventId, request }
}

/**
 * The same for the `limit` option: a {@link ConnectionLimiter} built for the framework's request
 * type is asked with the framework's request. The transports use only `acquire` and
 * `retryAfterHeader`; anything that is not a limiter is passed on for the transport to reject.
 */
export function limitWithRequest<From, To>(
  limit: ConnectionLimiter<To> | undefined,
  request: To,
): ConnectionLimiter<From> | undefined {
  if (typeof (limit as ConnectionLimiter<To> | undefined)?.acquire !== 'function') {
    return limit as ConnectionLimiter<From> | undefined
  }
  const limiter = limit as ConnectionLimiter<To>
  const shim = {
    acquire: () => limiter.acquire(request),
    get retryAfterHeader() {
      return limiter.retryAfterHeader
    },
  }
  return shim as unknown as ConnectionLimiter<From>
}
