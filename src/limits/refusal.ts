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
 * The head of a plain-text answer given instead of a stream (a refusal, the limiter's `503`):
 * the caller's extra headers (CORS, say) without the event-stream framing or its cache policy,
 * then `Content-Type: text/plain`, `Cache-Control: no-store` and the answer's own `extra`
 * headers, which replace any of the same name.
 *
 * @internal
 */
export function plainAnswerHeaders(
  streamHead: ReadonlyArray<readonly [string, string]>,
  extra: ReadonlyArray<readonly [string, string]>,
): Array<[string, string]> {
  const replaced = new Set([
    'content-type',
    'cache-control',
    'x-accel-buffering',
    'connection',
    ...extra.map(([name]) => name.toLowerCase()),
  ])
  const out: Array<[string, string]> = []
  for (const [name, value] of streamHead) {
    if (!replaced.has(name.toLowerCase())) out.push([name, value])
  }
  out.push(['Content-Type', 'text/plain; charset=utf-8'], ['Cache-Control', 'no-store'])
  for (const [name, value] of extra) out.push([name, value])
  return out
}

/**
 * The head of a refusal: a plain-text answer (see {@link plainAnswerHeaders}), and for `401` the
 * `WWW-Authenticate` challenge RFC 9110 §11.6.1 asks for (`Bearer`, unless the `headers` option
 * sets one).
 *
 * @internal
 */
export function refusalHeaders(
  status: 401 | 403,
  streamHead: ReadonlyArray<readonly [string, string]>,
): Array<[string, string]> {
  const challenged = streamHead.some(([name]) => name.toLowerCase() === 'www-authenticate')
  return plainAnswerHeaders(
    streamHead,
    status === 401 && !challenged ? [['WWW-Authenticate', 'Bearer']] : [],
  )
}
