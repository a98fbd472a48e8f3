/**
 * Accept negotiation for Node requests (`node:http`, `node:http2` compatibility API, Express,
 * Koa's `ctx.req`, Fastify's `request.raw`).
 *
 * @module
 */

import type { IncomingHttpHeaders } from 'node:http'
import type { IncomingHttpHeaders as Http2IncomingHttpHeaders } from 'node:http2'
import { acceptsEventStream } from './accept.ts'

/**
 * Whether a Node request asks for `text/event-stream`; see {@link acceptsEventStream} for the
 * rules (explicit, preferred at least as much as anything else, wildcards do not count).
 * Several `Accept` headers are read as one list, as RFC 9110 says.
 *
 * @example
 * ```ts
 * app.get('/prices', (req, res, next) => {
 *   if (!incomingAcceptsEventStream(req)) return void res.json(latestPrices())
 *   sendEventStream(req, res, prices()).catch(next)
 * })
 * ```
 */
export function incomingAcceptsEventStream(req: {
  readonly headers: IncomingHttpHeaders | Http2IncomingHttpHeaders
}): boolean {
  const value = req.headers.accept as string | string[] | undefined
  return acceptsEventStream(Array.isArray(value) ? value.join(',') : value)
}
