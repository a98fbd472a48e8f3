/**
 * Checks stream options once, at the call site, and resolves their defaults.
 *
 * @internal
 * @module
 */

import { checkSeparator, type Separator, type Serializer } from '../encoder/encode.ts'
import { checkOptionNames, invalidOption, SseError } from '../errors.ts'
import type { Limiter } from '../limits/limiter.ts'
import { defaultRegistry, type StreamRegistry } from '../shutdown/registry.ts'
import { ANY_WAIT, allowsShortDurations, checkDelay, type DurationRule } from '../util/delay.ts'
import { buildHeaders } from './headers.ts'
import { resolveOnce } from './options-cache.ts'
import type {
  CloseReason,
  ContentItem,
  HeadersInput,
  StreamContext,
  StreamOptions,
} from './types.ts'

/** The default keep-alive interval, as in sse-starlette: 15 s. */
export const DEFAULT_PING = 15_000

/** Options after checking, with defaults filled in. */
export interface ResolvedOptions<Req> {
  status: number
  headers: HeadersInput | undefined
  /** Keep-alive interval in ms; `0` when disabled. */
  ping: number
  pingMessage: (() => ContentItem) | undefined
  sep: Separator
  /** Send timeout in ms; `0` when none. */
  sendTimeout: number
  /** The longest the stream lasts, in ms; `0` when unbounded. */
  maxDuration: number
  retry: number | undefined
  serialize: Serializer | undefined
  dataSender: ((ctx: StreamContext<Req>) => unknown) | undefined
  onClose: ((reason: CloseReason) => void) | undefined
  onError: ((error: unknown, request: Req) => void) | undefined
  registry: StreamRegistry
  shutdownGrace: number | undefined
  onShutdown: (() => void) | undefined
  limit: Limiter<Req> | undefined
}

/** The options of a stream (`StreamOptions`): every transport and adapter takes these. */
const OPTIONS = [
  'status',
  'headers',
  'ping',
  'pingMessage',
  'sep',
  'sendTimeout',
  'maxDuration',
  'retry',
  'serialize',
  'dataSender',
  'onClose',
  'onError',
  'registry',
  'shutdownGrace',
  'onShutdown',
  'limit',
]

// Statuses that forbid a body: a stream cannot be sent with them.
const NO_BODY = new Set([204, 205, 304])

// Least values outside tests (see delay.ts; `shortDurations()` lowers them to 1 ms):
// - `ping`: keep-alive beats idle timeouts of tens of seconds (proxies 30-60 s, Bun 10 s); more
//   than one ping a second only costs bandwidth, and `ping: 15` is sse-starlette's seconds.
// - `sendTimeout`: TCP retransmits a lost segment after 200 ms at the least and 1 s at first
//   (RFC 6298, Linux): below 1 s, one lost packet drops a healthy client. `send_timeout=30` in
//   sse-starlette is seconds.
// - `maxDuration`: platform limits are seconds or minutes (Vercel, Lambda); a stream cut every
//   few ms only makes its client reconnect in a loop, and `maxDuration: 300` is seconds.
// - `shutdownGrace`: any wait; a short farewell only ends the stream sooner.
const PING: DurationRule = { min: 1000, zero: 'or false to disable' }
const SEND_TIMEOUT: DurationRule = { min: 1000, zero: 'for none' }
const MAX_DURATION: DurationRule = { min: 1000, zero: 'for no limit' }
const RETRY: DurationRule = { min: 1, zero: 'to reconnect at once' }

function duration(
  name: string,
  value: unknown,
  rule: DurationRule,
  short: boolean,
): number | undefined {
  if (value === undefined) return undefined
  return checkDelay(name, value, rule, short)
}

function callback<F>(name: string, value: unknown): F | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'function') invalidOption(name, 'a function', value)
  return value as F
}

function checkPingMessage(value: unknown): (() => ContentItem) | undefined {
  const factory = callback<() => ContentItem>('pingMessage', value)
  // Pings are sent from a timer, synchronously: an async factory's Promise is not an item (it
  // used to go out as a blank event). Caught here; a plain function returning a Promise ends
  // its stream through onError at the first ping, as any invalid item does.
  const kind = Object.prototype.toString.call(factory)
  if (kind === '[object AsyncFunction]' || kind === '[object AsyncGeneratorFunction]') {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      'Invalid option "pingMessage": expected a function that returns a content item ' +
        'synchronously, received an async function (its result is a Promise, not an item).',
    )
  }
  return factory
}

function checkStatus(value: unknown): number {
  if (value === undefined) return 200
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < 200 ||
    value > 599 ||
    NO_BODY.has(value)
  ) {
    invalidOption(
      'status',
      'an integer from 200 to 599 that allows a body (not 204, 205, 304)',
      value,
    )
  }
  return value
}

function checkPing(value: unknown, short: boolean): number {
  if (value === undefined) return DEFAULT_PING
  if (value === false) return 0
  return checkDelay('ping', value, PING, short)
}

function checkHeaders(value: unknown): HeadersInput | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'object' || value === null) {
    invalidOption(
      'headers',
      'an object, a Headers instance or a list of [name, value] pairs',
      value,
    )
  }
  // Builds the head once to check every name and value now, at the call site.
  buildHeaders(value as HeadersInput, true)
  return value as HeadersInput
}

function checkLimit<Req>(value: unknown): Limiter<Req> | undefined {
  if (value === undefined) return undefined
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as Limiter<Req>).acquire !== 'function'
  ) {
    invalidOption('limit', 'a ConnectionLimiter or RedisConnectionLimiter', value)
  }
  return value as Limiter<Req>
}

function checkRegistry(value: unknown): StreamRegistry {
  if (value === undefined) return defaultRegistry
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof (value as StreamRegistry).closeAll !== 'function'
  ) {
    invalidOption('registry', 'a StreamRegistry', value)
  }
  return value as StreamRegistry
}

/**
 * Checks `options` and fills in defaults. Throws `ERR_SSE_INVALID_OPTION` naming the first bad
 * option, including an unknown name (a typo such as `sendTimout` would otherwise do nothing).
 *
 * The result is frozen and shared: the same options object, unchanged, resolves to the same
 * result (a changed one is checked again).
 *
 * @param extra - option names the caller handles itself (such as `request` on the web path);
 *   options with such names are resolved afresh each time, as they usually differ per call.
 */
export function resolveOptions<Req>(
  options: StreamOptions<Req> | undefined,
  extra: readonly string[] = [],
): ResolvedOptions<Req> {
  if (options === undefined) {
    noOptions ??= resolveFresh<never>({}, [])
    return noOptions as ResolvedOptions<Req>
  }
  if (typeof options !== 'object' || options === null || extra.length > 0) {
    return resolveFresh(options, extra)
  }
  return resolveOnce(options, () => resolveFresh(options, extra))
}

let noOptions: ResolvedOptions<never> | undefined

/** {@link resolveOptions} without the cache. */
function resolveFresh<Req>(
  options: StreamOptions<Req> | undefined,
  extra: readonly string[] = [],
): ResolvedOptions<Req> {
  if (options === undefined) options = {}
  checkOptionNames('a stream', options, extra.length > 0 ? [...OPTIONS, ...extra] : OPTIONS)
  const short = allowsShortDurations(options)
  // A hint to the client, in ms on the wire too, so no seconds habit to catch; bounded because
  // clients wait with setTimeout, which turns a longer delay into an immediate reconnection.
  const retry = duration('retry', options.retry, RETRY, false)
  return Object.freeze<ResolvedOptions<Req>>({
    status: checkStatus(options.status),
    headers: checkHeaders(options.headers),
    ping: checkPing(options.ping, short),
    pingMessage: checkPingMessage(options.pingMessage),
    sep: checkSeparator(options.sep),
    sendTimeout: duration('sendTimeout', options.sendTimeout, SEND_TIMEOUT, short) ?? 0,
    maxDuration: duration('maxDuration', options.maxDuration, MAX_DURATION, short) ?? 0,
    retry,
    serialize: callback('serialize', options.serialize),
    dataSender: callback('dataSender', options.dataSender),
    onClose: callback('onClose', options.onClose),
    onError: callback('onError', options.onError),
    registry: checkRegistry(options.registry),
    shutdownGrace: duration('shutdownGrace', options.shutdownGrace, ANY_WAIT, short),
    onShutdown: callback('onShutdown', options.onShutdown),
    limit: checkLimit<Req>(options.limit),
  })
}
