/**
 * The response head of an event stream.
 *
 * @internal
 * @module
 */

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
      for (const [name, value] of user as ReadonlyArray<readonly [string, string]>) {
        add(name, String(value))
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
