/**
 * Type tests for the adapters' public types. Checked by `tsc --noEmit -p tsconfig.json` (not
 * run by vitest): an assertion that fails, or a `@ts-expect-error` that no longer errors, fails
 * the type check.
 */

import type { IncomingMessage } from 'node:http'
import { Elysia } from 'elysia'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { defineHandler, H3, type H3Event } from 'h3'
import { Hono } from 'hono'
import Koa from 'koa'
import { expectTypeOf } from 'vitest'
import { type ElysiaSseOptions, sse as elysiaSse } from '../../src/elysia.ts'
import { type FastifySseOptions, type OvenSsePluginOptions, ovenSse } from '../../src/fastify.ts'
import { type H3SseOptions, sse as h3Sse } from '../../src/h3.ts'
import { type HonoSseOptions, sse as honoSse } from '../../src/hono.ts'
import {
  acceptsEventStream,
  type CloseReason,
  type EventSourceResponse,
  openEventSourceResponse,
  requestAcceptsEventStream,
  type StreamContext,
  StreamRegistry,
} from '../../src/index.ts'
import { type KoaSseOptions, sse as koaSse } from '../../src/koa.ts'
import { incomingAcceptsEventStream } from '../../src/node.ts'

// --- Fastify: plugin options, declared decorator, module augmentation ---------------------
const app = Fastify()
void app.register(ovenSse)
void app.register(ovenSse, { ping: 10_000, registry: new StreamRegistry() })
// @ts-expect-error an unknown option does not compile
void app.register(ovenSse, { pingg: 1 })
// @ts-expect-error ping is a number of milliseconds or false
void app.register(ovenSse, { ping: 'often' })

expectTypeOf<FastifyReply['sse']>().toBeFunction()
expectTypeOf<FastifyReply['sse']>().returns.toEqualTypeOf<Promise<CloseReason>>()
expectTypeOf<OvenSsePluginOptions['registry']>().toEqualTypeOf<StreamRegistry | undefined>()
expectTypeOf<FastifySseOptions['onClose']>().toEqualTypeOf<
  ((reason: CloseReason) => void) | undefined
>()
// onError's second argument is the request the stream's source sees: the FastifyRequest.
expectTypeOf<FastifySseOptions['onError']>().toEqualTypeOf<
  ((error: unknown, request: FastifyRequest) => void) | undefined
>()

app.get('/events', (_request, reply) => {
  expectTypeOf(reply.sse).parameter(1).toEqualTypeOf<FastifySseOptions | undefined>()
  return reply.sse(({ request, signal, lastEventId }) => {
    // ctx.request is the FastifyRequest, not the raw IncomingMessage.
    expectTypeOf(request).toEqualTypeOf<FastifyRequest>()
    expectTypeOf(signal).toEqualTypeOf<AbortSignal>()
    expectTypeOf(lastEventId).toEqualTypeOf<string | undefined>()
    return ['hello', { event: 'bye', data: { any: 'json' } }]
  })
})
app.get('/bad', (_request, reply) => {
  // @ts-expect-error a number is not content
  return reply.sse(42)
})

// --- Hono --------------------------------------------------------------------------------
type Env = { Variables: { user: string } }
const hono = new Hono<Env>()
hono.get('/events/:room', (c) => {
  const result = honoSse(c, async function* ({ request, lastEventId }) {
    expectTypeOf(request).toEqualTypeOf<Request>()
    expectTypeOf(lastEventId).toEqualTypeOf<string | undefined>()
    yield { data: c.get('user') }
  })
  expectTypeOf(result).toEqualTypeOf<Promise<EventSourceResponse>>()
  return result
})
expectTypeOf<HonoSseOptions['dataSender']>().toEqualTypeOf<
  ((ctx: StreamContext<Request>) => unknown) | undefined
>()
// @ts-expect-error the request comes from the context, it is not an option
honoSse(undefined as never, [], { request: new Request('http://localhost/') })

// --- h3 ----------------------------------------------------------------------------------
const h3 = new H3()
h3.get('/rooms/:id', (event) => {
  const result = h3Sse(event, async function* ({ request, lastEventId }) {
    // ctx.request is event.req: a web Request (srvx's on Node).
    expectTypeOf(request).toEqualTypeOf<Request>()
    expectTypeOf(lastEventId).toEqualTypeOf<string | undefined>()
    yield { data: event.context.params?.id }
  })
  expectTypeOf(result).toEqualTypeOf<Promise<EventSourceResponse>>()
  return result
})
// A handler typed with its request's shape passes its event as well.
h3.get(
  '/typed/:id',
  defineHandler<{ routerParams: { id: string } }>((event) => h3Sse(event, ['one'])),
)
expectTypeOf<H3SseOptions['dataSender']>().toEqualTypeOf<
  ((ctx: StreamContext<Request>) => unknown) | undefined
>()
// @ts-expect-error the request comes from the event, it is not an option
h3Sse(undefined as unknown as H3Event, [], { request: new Request('http://localhost/') })
// --- Elysia ------------------------------------------------------------------------------
new Elysia()
  .derive(() => ({ user: 'ada' }))
  .get('/events/:room', (ctx) => {
    // The handler's own context, with its derived and path types, is accepted as it is.
    const result = elysiaSse(ctx, async function* ({ request, lastEventId }) {
      expectTypeOf(request).toEqualTypeOf<Request>()
      expectTypeOf(lastEventId).toEqualTypeOf<string | undefined>()
      yield { data: `${ctx.user} in ${ctx.params.room}` }
    })
    expectTypeOf(result).toEqualTypeOf<Promise<EventSourceResponse>>()
    return result
  })
  .get('/fields', ({ request, set }) => elysiaSse({ request, set }, ['hello']))
expectTypeOf<ElysiaSseOptions['dataSender']>().toEqualTypeOf<
  ((ctx: StreamContext<Request>) => unknown) | undefined
>()
// @ts-expect-error the request comes from the context, it is not an option
elysiaSse(undefined as never, [], { request: new Request('http://localhost/') })
// @ts-expect-error a context without `set` is not an Elysia context
elysiaSse({ request: new Request('http://localhost/') }, [])

// --- Koa ---------------------------------------------------------------------------------
const koa = new Koa()
koa.use(async (ctx) => {
  const reason = await koaSse(ctx, ({ request }) => {
    expectTypeOf(request).toEqualTypeOf<IncomingMessage>()
    return [{ data: 'hi' }]
  })
  expectTypeOf(reason).toEqualTypeOf<CloseReason>()
  // @ts-expect-error sep is one of the three line endings
  await koaSse(ctx, [], { sep: '\t' })
})
expectTypeOf<KoaSseOptions['status']>().toEqualTypeOf<number | undefined>()

// --- Web helpers and Accept negotiation ---------------------------------------------------
expectTypeOf(openEventSourceResponse).returns.toEqualTypeOf<Promise<EventSourceResponse>>()
expectTypeOf(acceptsEventStream).parameter(0).toEqualTypeOf<string | null | undefined>()
expectTypeOf(acceptsEventStream).returns.toEqualTypeOf<boolean>()
expectTypeOf(requestAcceptsEventStream).parameter(0).toEqualTypeOf<Request>()
expectTypeOf(incomingAcceptsEventStream).toBeCallableWith({} as IncomingMessage)
// @ts-expect-error a web Request goes to requestAcceptsEventStream
incomingAcceptsEventStream(new Request('http://localhost/'))
