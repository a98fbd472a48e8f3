/**
 * The client's options: what each one means, its default, and the one check that turns what the
 * application passed into settings the connection loop can trust.
 *
 * @module
 */

import { checkOptionNames, describe, invalidOption, SseError } from '../errors.ts'
import { allowsShortDurations, checkDelay } from '../util/delay.ts'
import type { BackoffSettings } from './backoff.ts'
import type { ClientCloseInfo, ClientEvent, ConnectFailure } from './types.ts'

/** What a `headers` or `body` function is told about the connection it is called for. */
export interface ConnectInfo {
  /** 0 for the first connection, then 1, 2… for each reconnect. */
  readonly attempt: number
  /** The position the connection resumes from (`''` for none); sent as `Last-Event-ID`. */
  readonly lastEventId: string
}

/** A request body that can be sent again on every reconnect (a stream can be read only once). */
export type ReplayableBody =
  | string
  | Blob
  | ArrayBuffer
  | ArrayBufferView
  | URLSearchParams
  | FormData

/** Options of {@link connect}. Every duration is in milliseconds. */
export interface ConnectOptions<E extends ClientEvent<unknown> = ClientEvent> {
  /** The HTTP method. @defaultValue `'GET'` */
  method?: string | undefined
  /**
   * The request body, sent on every (re)connect: a value, or a function called before each
   * connection (`ConnectInfo` says which). A `ReadableStream` cannot be replayed and is refused.
   */
  body?:
    | ReplayableBody
    | ((info: ConnectInfo) => ReplayableBody | Promise<ReplayableBody>)
    | undefined
  /**
   * Request headers: an object, a `Headers`, or a (possibly async) function called before each
   * connection, so a token refreshed since the last one is used. `Accept: text/event-stream` is
   * added unless you set `Accept`; `Last-Event-ID` is always the client's own.
   */
  headers?: HeadersInit | ((info: ConnectInfo) => HeadersInit | Promise<HeadersInit>) | undefined
  /**
   * Other `fetch` options (`credentials`, `mode`, `referrerPolicy`, …; `cache` is `'no-store'` unless given here). `method`,
   * `body`, `headers` and `signal` are the client's own and may not appear here.
   */
  init?: Omit<RequestInit, 'method' | 'body' | 'headers' | 'signal'> | undefined
  /** The `fetch` to use (a wrapper, a mock, a Workers service binding). @defaultValue `globalThis.fetch` */
  fetch?: typeof fetch | undefined
  /**
   * The position to start from: sent as `Last-Event-ID` on the first connection, as on every
   * reconnect. Pass what you saved from `event.lastEventId` to resume after a page reload.
   */
  lastEventId?: string | undefined
  /** Closes the stream for good when aborted (reason `'aborted'`). */
  signal?: AbortSignal | undefined
  /**
   * The first reconnection delay. A `retry:` field from the server replaces it (as in
   * `EventSource`). Each consecutive failure doubles it, up to `maxRetryDelay`.
   * @defaultValue `1000`
   */
  retryDelay?: number | undefined
  /** The longest computed delay. `Retry-After` may ask for longer and is obeyed. @defaultValue `30000` */
  maxRetryDelay?: number | undefined
  /**
   * The share of each delay taken off at random, from 0 to 1, so clients dropped together do
   * not return together. `0` makes the delays exact (tests).
   * @defaultValue `0.5`
   */
  jitter?: number | undefined
  /**
   * Consecutive failed connections after which the client gives up (reason `'error'`). A
   * connection that delivered an event resets the count. @defaultValue `Infinity`
   */
  maxRetries?: number | undefined
  /**
   * Reconnect when nothing (not an event, not a comment) arrived for this long, counting from
   * the request. Oven pings every 15 s by default, so the default allows four missed pings.
   * At least 1000 outside tests (`shortDurations()` from `oven-sse/testing`); `0` disables it.
   * @defaultValue `60000`
   */
  idleTimeout?: number | undefined
  /**
   * Event types that end the stream for good: the event is delivered, then the client closes
   * and never reconnects (reason `'end-event'`). A finished generation is not restarted.
   * @defaultValue `['oven-end']` (the last event of every Oven run)
   */
  endEvents?: readonly string[] | undefined
  /**
   * The longest event, in characters, the client buffers; a longer one fails the stream
   * (`'too-large'`, not retried: the server would send it again).
   * @defaultValue `16777216` (16 Mi)
   */
  maxEventSize?: number | undefined
  /**
   * Decides whether a failed connection is retried. Return `true` to retry after the default
   * delay (`failure.delay`, or the backoff when the default is to give up), a number of ms to
   * retry after that long, or `false` to give up. Called for every failure; the default
   * decision is `failure.delay !== undefined`. A 401 that needs a fresh token: refresh it
   * here, return `true`, and let the `headers` function send it.
   */
  shouldRetry?:
    | ((failure: ConnectFailure) => boolean | number | Promise<boolean | number>)
    | undefined
  /** Called for every event, before `on` handlers and the async iterator see it. */
  onEvent?: ((event: E) => void) | undefined
  /** Handlers by event type (`message` for events without `event:`). */
  on?: { [K in E['event']]?: (event: Extract<E, { event: K }>) => void } | undefined
  /** Called when a connection is open (a 2xx `text/event-stream` response). */
  onOpen?: ((response: Response) => void) | undefined
  /** Called for each comment line (Oven's pings), without the leading colon. */
  onComment?: ((comment: string) => void) | undefined
  /** Called when a connection failed and the client will reconnect after `delay` ms. */
  onReconnecting?: ((failure: ConnectFailure & { readonly delay: number }) => void) | undefined
  /** Called once, when the stream has ended for good. */
  onClose?: ((info: ClientCloseInfo) => void) | undefined
}

const OPTION_NAMES = [
  'method',
  'body',
  'headers',
  'init',
  'fetch',
  'lastEventId',
  'signal',
  'retryDelay',
  'maxRetryDelay',
  'jitter',
  'maxRetries',
  'idleTimeout',
  'endEvents',
  'maxEventSize',
  'shouldRetry',
  'onEvent',
  'on',
  'onOpen',
  'onComment',
  'onReconnecting',
  'onClose',
  'contract',
]

const RESERVED_INIT = ['method', 'body', 'headers', 'signal']

/** The options after the check, with defaults in place. @internal */
export interface ClientSettings<E extends ClientEvent<unknown>> {
  readonly url: URL
  readonly method: string
  readonly body: ConnectOptions<E>['body']
  readonly headers: ConnectOptions<E>['headers']
  readonly init: RequestInit
  readonly fetch: typeof fetch
  readonly lastEventId: string
  readonly signal: AbortSignal | undefined
  readonly backoff: BackoffSettings
  readonly maxRetries: number
  readonly idleTimeout: number
  readonly endEvents: ReadonlySet<string>
  readonly maxEventSize: number
  readonly shouldRetry: ConnectOptions<E>['shouldRetry']
  readonly onEvent: ((event: E) => void) | undefined
  readonly on: Record<string, ((event: E) => void) | undefined>
  readonly onOpen: ConnectOptions<E>['onOpen']
  readonly onComment: ConnectOptions<E>['onComment']
  readonly onReconnecting: ConnectOptions<E>['onReconnecting']
  readonly onClose: ConnectOptions<E>['onClose']
}

/** A backoff of 0 would reconnect in a tight loop for ever: at least 1 ms. */
const RETRY_RULE = { min: 1 }

/** The idle timeout is written in seconds elsewhere (`idleTimeout: 60`): at least 1 s. */
const IDLE_RULE = { min: 1000, zero: 'to disable' }

/** The URL to connect to; relative URLs resolve against the page, as `fetch` does. */
function checkUrl(url: unknown): URL {
  if (url instanceof URL) return new URL(url.href)
  if (typeof url !== 'string') {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Invalid url: expected a string or a URL, received ${describe(url)}.`,
    )
  }
  const base = (globalThis as { location?: { href?: string } }).location?.href
  try {
    return new URL(url, base)
  } catch (cause) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Invalid url: expected an absolute URL${base ? ' or a path' : ''}, received ${describe(url)}.`,
      { cause },
    )
  }
}

function checkFunction<T>(name: string, value: T): T {
  if (value !== undefined && typeof value !== 'function') invalidOption(name, 'a function', value)
  return value
}

function checkBody(value: unknown): void {
  if (value === undefined || typeof value === 'function' || typeof value === 'string') return
  if (typeof ReadableStream !== 'undefined' && value instanceof ReadableStream) {
    invalidOption(
      'body',
      'a body that can be sent again on each reconnect (a string, Blob, ArrayBuffer, ' +
        'URLSearchParams, FormData, or a function returning one); a ReadableStream can be read only once',
      value,
    )
  }
  if (
    value instanceof ArrayBuffer ||
    ArrayBuffer.isView(value) ||
    (typeof Blob !== 'undefined' && value instanceof Blob) ||
    (typeof URLSearchParams !== 'undefined' && value instanceof URLSearchParams) ||
    (typeof FormData !== 'undefined' && value instanceof FormData)
  ) {
    return
  }
  invalidOption(
    'body',
    'a string, Blob, ArrayBuffer, typed array, URLSearchParams, FormData or a function returning one',
    value,
  )
}

function checkHeaders(value: unknown): void {
  if (value === undefined || typeof value === 'function') return
  try {
    new Headers(value as HeadersInit)
  } catch (cause) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Invalid option "headers": expected a Headers, an object of header names to strings, ` +
        `an array of [name, value] pairs or a function returning one, received ${describe(value)} ` +
        `(${(cause as Error).message}).`,
      { cause },
    )
  }
}

/**
 * Checks `url` and `options` and fills in the defaults. Throws `ERR_SSE_INVALID_OPTION` naming
 * the option, what was expected and what was received.
 *
 * @internal
 */
export function resolveClientOptions<E extends ClientEvent<unknown>>(
  url: unknown,
  options: ConnectOptions<E>,
): ClientSettings<E> {
  checkOptionNames('connect()', options, OPTION_NAMES)
  const target = checkUrl(url)
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    invalidOption('url', 'an http: or https: URL', target.href)
  }
  const short = allowsShortDurations(options)
  const method = options.method ?? 'GET'
  if (typeof method !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(method)) {
    invalidOption('method', 'an HTTP method name such as "GET" or "POST"', method)
  }
  checkBody(options.body)
  if (options.body !== undefined && /^(GET|HEAD)$/i.test(method)) {
    invalidOption(
      'method',
      'a method that carries a body (such as "POST") when "body" is given',
      method,
    )
  }
  checkHeaders(options.headers)
  const init = options.init ?? {}
  if (typeof init !== 'object' || init === null)
    invalidOption('init', 'an object of fetch options', init)
  for (const name of RESERVED_INIT) {
    if (name in init) {
      invalidOption(
        'init',
        `fetch options without "${name}" (use the "${name}" option of connect())`,
        init,
      )
    }
  }
  const fetchFunction = options.fetch ?? globalThis.fetch
  if (typeof fetchFunction !== 'function') {
    invalidOption('fetch', 'a fetch function (this runtime has no global fetch)', fetchFunction)
  }
  const lastEventId = options.lastEventId ?? ''
  if (typeof lastEventId !== 'string' || /[\r\n\0]/.test(lastEventId)) {
    invalidOption('lastEventId', 'a string without CR, LF or NUL', lastEventId)
  }
  const signal = options.signal
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    invalidOption('signal', 'an AbortSignal', signal)
  }
  const initial = checkDelay('retryDelay', options.retryDelay ?? 1000, RETRY_RULE)
  const max = checkDelay('maxRetryDelay', options.maxRetryDelay ?? 30_000, RETRY_RULE)
  if (max < initial) {
    invalidOption('maxRetryDelay', `a delay at least "retryDelay" (${initial})`, max)
  }
  const jitter = options.jitter ?? 0.5
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    invalidOption('jitter', 'a number from 0 to 1', jitter)
  }
  const maxRetries = options.maxRetries ?? Number.POSITIVE_INFINITY
  if (
    typeof maxRetries !== 'number' ||
    !(maxRetries === Number.POSITIVE_INFINITY || (Number.isInteger(maxRetries) && maxRetries >= 0))
  ) {
    invalidOption('maxRetries', 'a whole number from 0, or Infinity', maxRetries)
  }
  const idleTimeout = checkDelay('idleTimeout', options.idleTimeout ?? 60_000, IDLE_RULE, short)
  const endEvents = options.endEvents ?? ['oven-end']
  if (!Array.isArray(endEvents) || !endEvents.every((name) => typeof name === 'string')) {
    invalidOption('endEvents', 'an array of event type names', endEvents)
  }
  const maxEventSize = options.maxEventSize ?? 16 * 1024 * 1024
  if (!Number.isInteger(maxEventSize) || maxEventSize < 1) {
    invalidOption('maxEventSize', 'a whole number of characters from 1', maxEventSize)
  }
  const on = options.on ?? {}
  if (typeof on !== 'object' || on === null) invalidOption('on', 'an object of event handlers', on)
  for (const [name, handler] of Object.entries(on)) checkFunction(`on.${name}`, handler)
  return {
    url: target,
    method,
    body: options.body,
    headers: options.headers,
    init,
    fetch: fetchFunction,
    lastEventId,
    signal,
    backoff: { initial, max, jitter },
    maxRetries,
    idleTimeout,
    endEvents: new Set(endEvents),
    maxEventSize,
    shouldRetry: checkFunction('shouldRetry', options.shouldRetry),
    onEvent: checkFunction('onEvent', options.onEvent),
    on: on as Record<string, ((event: E) => void) | undefined>,
    onOpen: checkFunction('onOpen', options.onOpen),
    onComment: checkFunction('onComment', options.onComment),
    onReconnecting: checkFunction('onReconnecting', options.onReconnecting),
    onClose: checkFunction('onClose', options.onClose),
  }
}
