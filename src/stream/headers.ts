/**
 * The response head of an event stream.
 *
 * @internal
 * @module
 */

import { invalidOption } from '../errors.ts'
import type { HeadersInput } from './types.ts'

/** Headers Oven owns: the stream's framing would break if a caller changed them. */
const FRAMING = new Set([
  'content-type',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'x-accel-buffering',
])

// RFC 9110 5.1 field-name (token) and 5.5 field-value, as Node's http checks them.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/

/** Whether `name` is one of the headers Oven owns (any case). */
export function isFramingHeader(name: string): boolean {
  return FRAMING.has(name.toLowerCase())
}

/** What the transport knows of the exchange, beyond the caller's `headers`. */
export interface HeadFacts {
  /**
   * The connection ends with this response (the client sent `Connection: close`, spoke
   * HTTP/1.0, or the server decided so): `Connection: close` instead of `keep-alive`.
   */
  close?: boolean | undefined
  /** The response already carries a `Cache-Control` (set by a middleware): no default. */
  cacheControlSet?: boolean | undefined
}

const NO_FACTS: HeadFacts = {}

/**
 * The head as a list of pairs (repeated names such as `Set-Cookie` kept):
 * - `Content-Type: text/event-stream; charset=utf-8`;
 * - `Cache-Control: no-store, no-transform` unless the caller set one (`no-transform` keeps
 *   compression middleware and CDNs from buffering the stream);
 * - `X-Accel-Buffering: no`, so nginx passes each event on at once;
 * - `Connection` on HTTP/1.x only (the header is forbidden in HTTP/2): `keep-alive`, or `close`
 *   when the connection ends with this response (RFC 9112 §9.6).
 *
 * `Transfer-Encoding` is never set by hand: the server picks chunked framing on HTTP/1.1.
 */
export function buildHeaders(
  user: HeadersInput | undefined,
  http1: boolean,
  facts: HeadFacts = NO_FACTS,
): Array<[string, string]> {
  const out: Array<[string, string]> = []
  let cacheControl = facts.cacheControlSet === true
  const add = (name: string, value: string): void => {
    // Checked here rather than left to `Headers`/`writeHead`: they throw a bare TypeError, and on
    // Node only after the content function has run.
    if (!TOKEN.test(name) || BAD_VALUE.test(value)) {
      invalidOption(
        'headers',
        'header names that are HTTP tokens and values without CR, LF, NUL or characters above U+00FF',
        `${name}: ${value}`,
      )
    }
    const lower = name.toLowerCase()
    if (FRAMING.has(lower)) return
    if (lower === 'cache-control') cacheControl = true
    out.push([name, value])
  }
  for (const [name, value] of headerPairs(user)) add(name, value)
  out.push(['Content-Type', 'text/event-stream; charset=utf-8'])
  if (!cacheControl) out.push(['Cache-Control', 'no-store, no-transform'])
  out.push(['X-Accel-Buffering', 'no'])
  if (http1) out.push(['Connection', facts.close ? 'close' : 'keep-alive'])
  return out
}

// RFC 9110 §7.6.1: Connection is a comma-separated list of case-insensitive options.
const CLOSE_OPTION = /(?:^|,)\s*close\s*(?:,|$)/i

/**
 * Whether an HTTP/1.x connection ends with this response: the client asked for it
 * (`Connection: close`, RFC 9112 §9.6), or it speaks HTTP/1.0, which has no chunked framing —
 * an event stream's end is then the connection's end.
 */
export function closesConnection(
  versionMajor: number,
  versionMinor: number,
  connection: string | readonly string[] | null | undefined,
): boolean {
  if (versionMajor === 1 && versionMinor === 0) return true
  if (connection === null || connection === undefined) return false
  const value = typeof connection === 'string' ? connection : connection.join(',')
  return CLOSE_OPTION.test(value)
}

/** Header pairs from any {@link HeadersInput}, repeated names kept. */
export function headerPairs(input: HeadersInput | undefined): Array<[string, string]> {
  const out: Array<[string, string]> = []
  if (input === undefined || input === null) return out
  if (Array.isArray(input)) {
    for (const pair of input as ReadonlyArray<readonly [string, string]>) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        invalidOption('headers', 'a list of [name, value] pairs', pair)
      }
      out.push([String(pair[0]), String(pair[1])])
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
 * Moves every header out of a framework's response `Headers` (h3's `event.res.headers`,
 * Elysia's `set.headers` once it is a `Headers`), so the framework has none to merge over the
 * stream's head: a copy of them, or `undefined` when there were none.
 */
export function takeHeaders(headers: Headers): Headers | undefined {
  if (headers.keys().next().done) return undefined
  const taken = new Headers(headers)
  for (const name of [...taken.keys()]) headers.delete(name)
  return taken
}

/**
 * Headers a framework collected before the stream (`reply.header()`, `c.header()`),
 * overridden name by name by the `headers` option.
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
 * Reads the id a reconnecting client resumes from: the `Last-Event-ID` header, or the
 * `lastEventId` query parameter that EventSource polyfills send when they cannot set headers.
 */
export function readLastEventId(header: string | null | undefined, url: string | undefined) {
  if (header) return header
  if (url === undefined || !url.includes('lastEventId=')) return undefined
  const query = url.indexOf('?')
  if (query < 0) return undefined
  return new URLSearchParams(url.slice(query + 1)).get('lastEventId') || undefined
}
