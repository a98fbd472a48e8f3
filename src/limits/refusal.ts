/**
 * Refusals before the head: an `authorize` hook's `401` or `403`, answered by the transport
 * itself (as the connection limiter's `503`) so every framework and runtime answers alike, and
 * nothing of the stream is sent.
 *
 * Web-standard: no `node:` imports.
 *
 * @module
 */

import { isSseError } from '../errors.ts'

/** The status a refusal error is answered with, or `undefined` for any other error. */
export function refusalStatus(error: unknown): 401 | 403 | undefined {
  if (!isSseError(error)) return undefined
  if (error.code === 'ERR_SSE_UNAUTHORIZED') return 401
  if (error.code === 'ERR_SSE_FORBIDDEN') return 403
  return undefined
}

/** The body of a refusal: says what happened, nothing about why (that is in your logs). */
export function refusalBody(status: 401 | 403): string {
  return status === 401 ? 'Unauthorized\n' : 'Forbidden\n'
}

/**
 * The head of a refusal: the caller's extra headers (CORS, say) without the event-stream
 * framing, a plain-text answer that is never cached, and for `401` the `WWW-Authenticate`
 * challenge RFC 9110 §11.6.1 asks for (`Bearer`, unless the `headers` option sets one).
 *
 * @internal
 */
export function refusalHeaders(
  status: 401 | 403,
  streamHead: ReadonlyArray<readonly [string, string]>,
): Array<[string, string]> {
  const out: Array<[string, string]> = []
  let challenged = false
  for (const [name, value] of streamHead) {
    const lower = name.toLowerCase()
    if (
      lower === 'content-type' ||
      lower === 'cache-control' ||
      lower === 'x-accel-buffering' ||
      lower === 'connection'
    ) {
      continue
    }
    if (lower === 'www-authenticate') challenged = true
    out.push([name, value])
  }
  out.push(['Content-Type', 'text/plain; charset=utf-8'])
  out.push(['Cache-Control', 'no-store'])
  if (status === 401 && !challenged) out.push(['WWW-Authenticate', 'Bearer'])
  return out
}
