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

/**
 * The head as a list of pairs (repeated names such as `Set-Cookie` kept):
 * - `Content-Type: text/event-stream; charset=utf-8`;
 * - `Cache-Control: no-store, no-transform` unless the caller set one (`no-transform` keeps
 *   compression middleware and CDNs from buffering the stream);
 * - `X-Accel-Buffering: no`, so nginx passes each event on at once;
 * - `Connection: keep-alive` on HTTP/1.x only: the header is forbidden in HTTP/2.
 *
 * `Transfer-Encoding` is never set by hand: the server picks chunked framing on HTTP/1.1.
 */
export function buildHeaders(
  user: HeadersInput | undefined,
  http1: boolean,
): Array<[string, string]> {
  const out: Array<[string, string]> = []
  let cacheControl = false
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
  if (user !== undefined) {
    if (typeof (user as Headers).forEach === 'function' && !Array.isArray(user)) {
      ;(user as Headers).forEach((value, name) => {
        add(name, value)
      })
    } else if (Array.isArray(user)) {
      for (const pair of user as ReadonlyArray<readonly [string, string]>) {
        if (!Array.isArray(pair) || pair.length !== 2) {
          invalidOption('headers', 'a list of [name, value] pairs', pair)
        }
        add(String(pair[0]), String(pair[1]))
      }
    } else {
      for (const [name, value] of Object.entries(user)) {
        if (value === undefined) continue
        if (Array.isArray(value)) for (const item of value) add(name, String(item))
        else add(name, String(value))
      }
    }
  }
  out.push(['Content-Type', 'text/event-stream; charset=utf-8'])
  if (!cacheControl) out.push(['Cache-Control', 'no-store, no-transform'])
  out.push(['X-Accel-Buffering', 'no'])
  if (http1) out.push(['Connection', 'keep-alive'])
  return out
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
