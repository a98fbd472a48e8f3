/**
 * The Fastify plugin: `app.register(ovenSse)` adds `reply.sse(content, options)`.
 *
 * Fastify quirks handled here: the reply is hijacked only once the content is ready (so a
 * content function that throws still gets Fastify's error handler and its normal error
 * response), headers set with `reply.header()` are kept, errors while streaming go to
 * `reply.log`, and `app.close()` ends the open streams before the server stops.
 *
 * @module
 */

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { SseError } from '../errors.ts'
import { StreamRegistry } from '../shutdown/registry.ts'
import { mergeHeaders } from '../stream/headers.ts'
import { resolveOptions } from '../stream/options.ts'
import { checkContent } from '../stream/source.ts'
import type { CloseReason, Content, ContentSource, StreamOptions } from '../stream/types.ts'
import { streamResponse } from '../transports/node.ts'

/** Options of `reply.sse()`: the stream options, with `ctx.request` the `FastifyRequest`. */
export type FastifySseOptions = StreamOptions<FastifyRequest>

/** Options of the {@link ovenSse} plugin. */
export interface OvenSsePluginOptions extends FastifySseOptions {
  /**
   * The shutdown registry this app's streams join. `app.close()` calls its `closeAll()` (in a
   * `preClose` hook), so pass a registry of this app's own, not one shared with other servers.
   * @defaultValue a new registry for this app
   */
  registry?: StreamRegistry | undefined
}

declare module 'fastify' {
  interface FastifyReply {
    /**
     * Streams `content` as Server-Sent Events on this reply. Return (or await) the promise from
     * your handler: it rejects before anything is sent if a content function throws, so
     * Fastify's error handler answers as usual, and it settles with the close reason once the
     * stream has ended. Options given to the plugin are the defaults of every call.
     *
     * @example
     * ```ts
     * app.get('/events', (request, reply) =>
     *   reply.sse(async function* ({ signal }) {
     *     for (let i = 0; !signal.aborted; i++) {
     *       yield { data: `tick ${i}` }
     *       await setTimeout(1000, undefined, { signal })
     *     }
     *   }),
     * )
     * ```
     */
    sse(content: Content<FastifyRequest>, options?: FastifySseOptions): Promise<CloseReason>
  }
}

// Options that `app.register` hands to every plugin; they are not stream options.
const REGISTER_KEYS = ['prefix', 'logLevel', 'logSerializers']

/**
 * A stream the client closed — or a client dropped for not reading (`sendTimeout`) — never
 * finishes its response, so Fastify neither runs `onResponse` nor logs the request; it runs
 * `onRequestAbort` hooks instead. For its own streams Fastify then logs `stream closed
 * prematurely` at `info`: the plugin does the same, with the close reason and how long the
 * stream lasted, and honours `disableRequestLogging` as Fastify does.
 */
function logUnfinished(reply: FastifyReply, reason: CloseReason): void {
  if ((reason !== 'disconnect' && reason !== 'timeout') || reply.raw.writableFinished) return
  const disabled = reply.server.initialConfig.disableRequestLogging as
    | boolean
    | ((request: FastifyRequest) => boolean)
    | undefined
  if (typeof disabled === 'function' ? disabled(reply.request) : disabled) return
  reply.log.info(
    { res: reply, responseTime: reply.elapsedTime, reason },
    'stream closed prematurely',
  )
}

function ignore(): void {}

/** Errors while streaming go to the request's logger, with its request id. */
function logStreamError(error: unknown, request: FastifyRequest): void {
  request.log.error({ err: error }, 'oven-sse: event stream failed')
}

/**
 * The options of one stream: `options` itself unless the reply carries a status or headers set
 * before `reply.sse()`. Passing the same object for every stream lets them share one resolved
 * copy (measured: ~0.6 KiB per idle stream less than merging per call).
 */
function optionsFor(reply: FastifyReply, options: FastifySseOptions): FastifySseOptions {
  const status = options.status === undefined && reply.statusCode !== 200
  const replyHeaders = reply.getHeaders()
  let headers = false
  for (const _ in replyHeaders) {
    headers = true
    break
  }
  if (!status && !headers && options.onError !== undefined) return options
  return {
    ...options,
    status: options.status ?? (status ? reply.statusCode : undefined),
    headers: headers
      ? mergeHeaders(replyHeaders as Record<string, string>, options.headers)
      : options.headers,
    onError: options.onError ?? logStreamError,
  }
}

function streamReply(
  reply: FastifyReply,
  content: Content<FastifyRequest>,
  options: FastifySseOptions,
): Promise<CloseReason> {
  const request = reply.request
  let hijacked = false
  const hijack = () => {
    if (hijacked) return
    hijacked = true
    // From here on the response is ours: Fastify neither sends nor serializes anything, but
    // still runs its onResponse hooks and logs the request when the response ends.
    reply.hijack()
  }
  const run = typeof content === 'function' ? readyThenHijack(content, hijack) : content
  const resolved = resolveOptions(optionsFor(reply, options))
  const closed = streamResponse(request.raw, reply.raw, run, resolved, request)
  // Content that is not a function cannot fail any more; and a connection limit that turned the
  // request away has answered 503 already. Either way Fastify must not send anything now.
  if (typeof content !== 'function' || reply.raw.headersSent) hijack()
  // A rejection is Fastify's to answer (its error handler): only the ends are watched here.
  // An end before the head (a shutdown while the content function ran) is answered by the
  // transport: hijacked first, so Fastify does not send the close reason as a body.
  // Bound rather than a closure: the stream keeps only the reply, not this call's scope.
  closed.then(onStreamEnd.bind(reply), ignore)
  return closed
}

function onStreamEnd(this: FastifyReply, reason: CloseReason): void {
  this.hijack()
  logUnfinished(this, reason)
}

/**
 * Runs the content function, checks what it returned, and only then hijacks the reply: until
 * then a throw still reaches Fastify's error handler, because nothing has been sent.
 */
function readyThenHijack(
  content: Extract<Content<FastifyRequest>, (...args: never[]) => unknown>,
  hijack: () => void,
): Content<FastifyRequest> {
  return async (ctx) => {
    const source: unknown = await content(ctx)
    checkContent(source)
    if (typeof source === 'function') {
      throw new SseError(
        'ERR_SSE_INVALID_CONTENT',
        'Invalid content: a content function returned a function; return the source itself.',
      )
    }
    hijack()
    return source as ContentSource
  }
}

const plugin: FastifyPluginAsync<OvenSsePluginOptions> = async (fastify, pluginOptions) => {
  const defaults: Record<string, unknown> = { ...pluginOptions }
  for (const key of REGISTER_KEYS) delete defaults[key]
  const registry = (defaults.registry as StreamRegistry | undefined) ?? new StreamRegistry()
  // One object for every call without options of its own: resolved once, shared by streams.
  const base: FastifySseOptions = {
    ...defaults,
    registry,
    onError: (defaults.onError as FastifySseOptions['onError']) ?? logStreamError,
  }
  // Misuse fails at register time, not on the first request.
  resolveOptions(base)
  fastify.decorateReply(
    'sse',
    function sse(
      this: FastifyReply,
      content: Content<FastifyRequest>,
      options?: FastifySseOptions,
    ) {
      return streamReply(this, content, options === undefined ? base : { ...base, ...options })
    },
  )
  // preClose runs before the server stops accepting and waits for its connections; an open
  // stream would otherwise keep `app.close()` waiting forever.
  fastify.addHook('preClose', async () => {
    await registry.closeAll()
  })
}

/**
 * The Fastify plugin. Register it once; every reply then has `reply.sse(content, options)`.
 * Plugin options are the default stream options of every call (a call's own options win).
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { ovenSse } from 'oven-sse/fastify'
 *
 * const app = Fastify({ logger: true })
 * await app.register(ovenSse, { ping: 10_000 })
 * app.get('/events', (request, reply) => reply.sse(['hello', { event: 'bye', data: 'see you' }]))
 * await app.listen({ port: 8000 })
 * ```
 */
export const ovenSse = fp(plugin, { fastify: '5.x', name: 'oven-sse' })
