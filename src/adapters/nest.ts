/**
 * NestJS (`@nestjs/platform-express` and `@nestjs/platform-fastify`): the `@EventStream()` route
 * decorator, `OvenSseModule.forRoot()` for defaults and shutdown, and `@LastEventId()`.
 *
 * How it fits into Nest (read in Nest 12.6, `router-execution-context.js`): `@EventStream()`
 * declares the route as `@Get()` does, and gives the handler's two spare parameters `@Req()` and
 * `@Res()` — a handler with `@Res()` owns its response, so Nest sends nothing after it. The
 * method is wrapped so that it returns the stream's promise, which:
 *
 * - rejects *before the head* when the handler, its content function or the Observable's first
 *   notification fails, so Nest's exception filters answer as for any route (a thrown
 *   `UnauthorizedException` is Nest's 401 JSON; a `@Catch()` filter applies);
 * - settles with the close reason once the stream has ended: interceptors around the handler
 *   see the stream's whole life, and guards and pipes run before it as usual.
 *
 * Platform quirks handled here: on Fastify the reply is hijacked once the content is ready
 * (until then a throw still reaches Nest's filters through Fastify), and headers set with
 * `@Header()` (kept on the reply, not the raw response) are taken into the head; on Express they
 * are on the response already and Oven keeps them.
 *
 * @module
 */

import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  type BeforeApplicationShutdown,
  createParamDecorator,
  type DynamicModule,
  type ExecutionContext,
  Inject,
  Logger,
  Optional,
  Req,
  RequestMapping,
  RequestMethod,
  Res,
} from '@nestjs/common'
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js'
import type {} from 'reflect-metadata'
import { describe, SseError } from '../errors.ts'
import { defaultRegistry, StreamRegistry } from '../shutdown/registry.ts'
import { mergeHeaders, readLastEventId } from '../stream/headers.ts'
import {
  checkQueue,
  isSubscribable,
  openObservable,
  type Subscribable,
} from '../stream/observable.ts'
import { type ResolvedOptions, resolveOptions } from '../stream/options.ts'
import { checkContent, isThenable } from '../stream/source.ts'
import type {
  CloseReason,
  Content,
  ContentSource,
  StreamContext,
  StreamOptions,
} from '../stream/types.ts'
import { streamResponse } from '../transports/node.ts'

/**
 * The request a Nest handler is given: Express's `Request` (itself Node's `IncomingMessage`),
 * or a `FastifyRequest`, whose `raw` is the `IncomingMessage`. It is `ctx.request`.
 */
export type NestRequest = IncomingMessage | { readonly raw: IncomingMessage }

/** The stream options of Nest routes, and how many Observable events may wait. */
export interface NestSseOptions extends StreamOptions<NestRequest> {
  /**
   * For a handler that returns an Observable: how many events may wait for a client that reads
   * slower than the Observable emits (beyond what the socket buffers hold). Past it the
   * Observable is unsubscribed and the client dropped (the stream ends with reason `timeout`, a
   * warning is logged): an `EventSource` reconnects with `Last-Event-ID` and resumes. A burst of
   * more events before the head is sent fails the request (an error for Nest's filters).
   * @defaultValue `1000`
   */
  queue?: number | undefined
}

/** Options of {@link EventStream}: the stream options, and the route's HTTP method. */
export interface EventStreamOptions extends NestSseOptions {
  /**
   * The route's HTTP method (a `fetch`-based client may POST).
   * @defaultValue `RequestMethod.GET`
   */
  method?: RequestMethod | undefined
}

/** A Nest `MessageEvent`, as `@Sse()` handlers emit: `type` is the event name. */
export interface NestMessageEvent {
  data?: unknown
  id?: string | undefined
  type?: string | undefined
  retry?: number | undefined
  comment?: string | undefined
}

/**
 * What an `@EventStream()` handler returns (or resolves to):
 * - an Observable (rxjs, or anything with `subscribe`) of Nest `MessageEvent`s, strings, or Oven
 *   event objects — what an `@Sse()` handler returns;
 * - an Oven source: an async generator or iterable, an iterable, a `ReadableStream`;
 * - a content function `(ctx) => source`, which receives `ctx.signal` and `ctx.lastEventId`.
 */
export type EventStreamResult =
  | Subscribable<unknown>
  | ContentSource
  | ((ctx: StreamContext<NestRequest>) => ContentSource | Promise<ContentSource>)

/** A handler `@EventStream()` may decorate. */
export type EventStreamHandler = (
  ...args: never[]
) => EventStreamResult | Promise<EventStreamResult>

const logger = new Logger('EventStream')

function logStreamError(error: unknown): void {
  logger.error(error)
}

/**
 * A Nest app's streams: the defaults given to {@link OvenSseModule.forRoot} and the registry its
 * streams join. Made once per app (a factory provider), so two apps built from one module do
 * not share a registry. Nest calls `beforeApplicationShutdown` after every `onModuleDestroy` and
 * before it closes the server: the streams end cleanly there, or `app.close()` would wait for
 * them for ever.
 */
class OvenSseSettings implements BeforeApplicationShutdown {
  readonly defaults: NestSseOptions
  readonly registry: StreamRegistry

  constructor(defaults: NestSseOptions) {
    this.registry = defaults.registry ?? new StreamRegistry()
    this.defaults = { ...defaults, registry: this.registry }
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.registry.closeAll()
  }
}

/**
 * Registers Oven with a Nest app: the default options of every `@EventStream()` route, and the
 * shutdown hook that ends open streams cleanly on `app.close()` (and on a signal, with
 * `app.enableShutdownHooks()`). Global: import it once, in the root module.
 *
 * @example
 * ```ts
 * @Module({
 *   imports: [OvenSseModule.forRoot({ ping: 15_000, shutdownGrace: 1000 })],
 *   controllers: [EventsController],
 * })
 * export class AppModule {}
 * ```
 */
// biome-ignore lint/complexity/noStaticOnlyClass: Nest imports modules as classes; `forRoot` is its convention.
export class OvenSseModule {
  /**
   * The module with `options` as the defaults of every route (a route's own options win).
   * Misuse throws here, at startup.
   */
  static forRoot(options: NestSseOptions = {}): DynamicModule {
    splitOptions(options, 'OvenSseModule.forRoot')
    return {
      module: OvenSseModule,
      global: true,
      providers: [{ provide: OvenSseSettings, useFactory: () => new OvenSseSettings(options) }],
      exports: [OvenSseSettings],
    }
  }
}

/** Where the app's settings are injected on a controller (property injection, optional). */
const SETTINGS = Symbol('oven-sse.nest.settings')

type Controller = { [SETTINGS]?: OvenSseSettings | undefined }

/** Checks the options: the stream options resolve, `queue` is valid; returns the two apart. */
function splitOptions(
  options: EventStreamOptions,
  owner: string,
): { stream: StreamOptions<NestRequest>; queue: number | undefined } {
  if (typeof options !== 'object' || options === null) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Invalid options for ${owner}: expected an object, received ${describe(options)}.`,
    )
  }
  const { queue, method: _method, ...stream } = options
  resolveOptions(stream)
  if (queue !== undefined) checkQueue(queue)
  return { stream, queue }
}

/** The first parameter index after the handler's own (decorated or declared) parameters. */
function spareIndex(target: object, key: string | symbol, handler: (...args: never[]) => unknown) {
  const params: Record<string, { index: number }> | undefined = Reflect.getMetadata(
    ROUTE_ARGS_METADATA,
    target.constructor,
    key,
  )
  let index = handler.length
  for (const param of Object.values(params ?? {})) index = Math.max(index, param.index + 1)
  return index
}

/**
 * The wrapper carries the metadata decorators below `@EventStream()` put on the handler
 * (`@UseGuards()`, `@UseInterceptors()`, …): Nest reads it from the method it calls.
 */
function copyMetadata(from: object, to: object): void {
  for (const key of Reflect.getOwnMetadataKeys(from)) {
    Reflect.defineMetadata(key, Reflect.getOwnMetadata(key, from), to)
  }
}

/**
 * Declares a route (like `@Get(path)`) that streams what the handler returns as Server-Sent
 * Events through Oven. Replace `@Sse(path)` with it and the handler can stay as it is: an
 * Observable of `MessageEvent`s works, as do async generators and content functions (see
 * {@link EventStreamResult}). Guards, pipes, interceptors and exception filters apply as to any
 * route; an error before the stream's head (thrown by the handler or its content function, or
 * the Observable's first notification) is answered by Nest's exception filters.
 *
 * The handler must not use its parameters past its own: `@EventStream()` gives it `@Req()` and
 * `@Res()` there.
 *
 * @param path - the route path, as for `@Get()`.
 * @param options - stream options for this route, over {@link OvenSseModule.forRoot}'s.
 *
 * @example
 * ```ts
 * @Controller('prices')
 * export class PricesController {
 *   @EventStream('live')
 *   live(): Observable<MessageEvent> {
 *     return interval(1000).pipe(map((n) => ({ id: String(n), data: { n } })))
 *   }
 *
 *   @EventStream('ticks', { ping: 10_000 })
 *   ticks() {
 *     return async function* ({ signal, lastEventId }: StreamContext<NestRequest>) {
 *       for (let i = Number(lastEventId ?? 0) + 1; !signal.aborted; i++) {
 *         yield { id: String(i), data: `tick ${i}` }
 *         await setTimeout(1000, undefined, { signal })
 *       }
 *     }
 *   }
 * }
 * ```
 */
export function EventStream(
  path?: string | string[],
  options: EventStreamOptions = {},
): <T extends EventStreamHandler>(
  target: object,
  key: string | symbol,
  descriptor: TypedPropertyDescriptor<T>,
) => TypedPropertyDescriptor<T> {
  const route = new Route(splitOptions(options, 'EventStream'))
  const method = options.method ?? RequestMethod.GET
  return <T extends EventStreamHandler>(
    target: object,
    key: string | symbol,
    descriptor: TypedPropertyDescriptor<T>,
  ) => {
    const handler = descriptor.value
    if (typeof handler !== 'function') {
      throw new SseError(
        'ERR_SSE_INVALID_CONTENT',
        `@EventStream() decorates a method; ${String(key)} is ${describe(handler)}.`,
      )
    }
    const index = spareIndex(target, key, handler)
    const wrapper = function (this: Controller, ...args: unknown[]): Promise<CloseReason> {
      const run = () => handler.apply(this, args.slice(0, index) as never[])
      return route.stream(this[SETTINGS], args[index] as NestRequest, args[index + 1], run)
    }
    copyMetadata(handler, wrapper)
    Object.defineProperty(wrapper, 'name', { value: handler.name })
    descriptor.value = wrapper as unknown as T
    Req()(target, key, index)
    Res()(target, key, index + 1)
    Inject(OvenSseSettings)(target, SETTINGS)
    Optional()(target, SETTINGS)
    RequestMapping({ path: path ?? '/', method })(target, key, descriptor)
    return descriptor
  }
}

/** A Fastify reply, as far as this adapter needs it. */
interface FastifyReplyLike {
  readonly raw: ServerResponse
  hijack(): void
  getHeaders(): Record<string, unknown>
}

function isFastifyReply(response: unknown): response is FastifyReplyLike {
  return typeof (response as Partial<FastifyReplyLike>).hijack === 'function'
}

function rawRequest(request: NestRequest): IncomingMessage {
  return 'raw' in request && request.raw !== undefined ? request.raw : (request as IncomingMessage)
}

let warnedNoModule = false

/** One `@EventStream()` route: its options, resolved once per app. */
class Route {
  readonly #stream: StreamOptions<NestRequest>
  readonly #queue: number | undefined
  readonly #resolved = new WeakMap<
    object,
    { options: ResolvedOptions<NestRequest>; queue: number }
  >()

  constructor(options: { stream: StreamOptions<NestRequest>; queue: number | undefined }) {
    this.#stream = options.stream
    this.#queue = options.queue
  }

  /** The route's options over the app's defaults, resolved on the app's first request. */
  #optionsFor(settings: OvenSseSettings | undefined) {
    const key = settings ?? Route
    let resolved = this.#resolved.get(key)
    if (resolved === undefined) {
      if (settings === undefined && !warnedNoModule) {
        warnedNoModule = true
        logger.warn(
          'OvenSseModule is not imported: app.close() will wait for open event streams. ' +
            'Import OvenSseModule.forRoot() in the root module.',
        )
      }
      const { queue, ...defaults } = settings?.defaults ?? { registry: defaultRegistry }
      resolved = {
        options: resolveOptions({ onError: logStreamError, ...defaults, ...this.#stream }),
        queue: checkQueue(this.#queue ?? queue),
      }
      this.#resolved.set(key, resolved)
    }
    return resolved
  }

  stream(
    settings: OvenSseSettings | undefined,
    request: NestRequest,
    response: unknown,
    run: () => unknown,
  ): Promise<CloseReason> {
    const { options, queue } = this.#optionsFor(settings)
    const req = rawRequest(request)
    const reply = isFastifyReply(response) ? response : undefined
    const res = reply ? reply.raw : (response as ServerResponse)
    let hijacked = false
    const hijack = () => {
      if (hijacked || !reply) return
      hijacked = true
      // From here on the response is Oven's: Fastify sends and serializes nothing.
      reply.hijack()
    }
    const content: Content<NestRequest> = async (ctx) => {
      let result = run()
      if (isThenable(result)) result = await result
      let source: unknown
      if (isSubscribable(result)) {
        source = await openObservable(result, {
          queue,
          toItem: toContentItem,
          onOverflow: (bound) =>
            logger.warn(
              `The client of ${req.method} ${req.url} fell ${bound} events behind its Observable ` +
                '(the "queue" option): the stream was ended so that it reconnects and resumes.',
            ),
        })
      } else if (typeof result === 'function') {
        source = (result as (ctx: StreamContext<NestRequest>) => unknown)(ctx)
        if (isThenable(source)) source = await source
        checkContent(source)
        if (typeof source === 'function') {
          throw new SseError(
            'ERR_SSE_INVALID_CONTENT',
            'Invalid content: a content function returned a function; return the source itself.',
          )
        }
      } else {
        checkContent(result)
        source = result
      }
      hijack()
      return source as ContentSource
    }
    const closed = streamResponse(
      req,
      res,
      content,
      this.#withReplyHeaders(reply, options),
      request,
    )
    // A connection limit that turned the request away has answered 503 already.
    if (res.headersSent) hijack()
    return closed.then((reason) => {
      // Ended before its head (a shutdown while the content function ran): answered already.
      hijack()
      return reason
    })
  }

  /** On Fastify, headers set with `@Header()` wait on the reply: they join the head. */
  #withReplyHeaders(
    reply: FastifyReplyLike | undefined,
    options: ResolvedOptions<NestRequest>,
  ): ResolvedOptions<NestRequest> {
    if (!reply) return options
    const preset = reply.getHeaders()
    if (Object.keys(preset).length === 0) return options
    return {
      ...options,
      headers: mergeHeaders(preset as Record<string, string>, options.headers),
    }
  }
}

/**
 * An Observable's value as a content item: a Nest `MessageEvent`'s `type` is Oven's `event`; a
 * value that is not an object is the data (as `@Sse()` sends it). Anything else goes to Oven
 * as it is, and an object with keys an event does not have is refused there.
 */
function toContentItem(value: unknown): unknown {
  if (typeof value === 'string') return value
  if (value === null || typeof value !== 'object') return { data: value }
  if (!('type' in value) || 'event' in value) return value
  const { type, ...rest } = value as NestMessageEvent
  return type === undefined ? rest : { ...rest, event: type }
}

/**
 * A parameter decorator for the id a reconnecting client resumes from: the `Last-Event-ID`
 * header, or the `lastEventId` query parameter EventSource polyfills send; `undefined` on a
 * first connection. For handlers that return an Observable (a content function has
 * `ctx.lastEventId`).
 *
 * @example
 * ```ts
 * @EventStream('feed')
 * feed(@LastEventId() lastEventId: string | undefined): Observable<MessageEvent> {
 *   return this.feed.since(lastEventId)
 * }
 * ```
 */
export const LastEventId: () => ParameterDecorator = createParamDecorator(
  (_data: unknown, context: ExecutionContext) => {
    const req = rawRequest(context.switchToHttp().getRequest<NestRequest>())
    const header = req.headers['last-event-id']
    return readLastEventId(Array.isArray(header) ? header[0] : header, req.url)
  },
)
