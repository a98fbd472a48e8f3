/** Type tests for the core API: checked by `tsc --noEmit`, not run. */
import type { IncomingMessage } from 'node:http'
import { expectTypeOf } from 'vitest'
import {
  type CloseReason,
  type Content,
  createChannel,
  EventSourceResponse,
  ServerSentEvent,
  type StreamContext,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'

declare const req: IncomingMessage
declare const res: import('node:http').ServerResponse

// Every content form is accepted.
new EventSourceResponse(['a', { data: 1 }, new ServerSentEvent({ data: 'x' }), new Uint8Array()])
new EventSourceResponse(
  (async function* () {
    yield 'a'
  })(),
)
new EventSourceResponse(new ReadableStream<string>())
new EventSourceResponse(createChannel<string>(1))
new EventSourceResponse(async ({ signal, lastEventId }) => {
  expectTypeOf(signal).toEqualTypeOf<AbortSignal>()
  expectTypeOf(lastEventId).toEqualTypeOf<string | undefined>()
  return ['x']
})

// A string is not a source (it would be iterated by character).
// @ts-expect-error a plain string is not content
new EventSourceResponse('hello')
// @ts-expect-error an unknown event key
new EventSourceResponse([{ data: 'x', evnet: 'typo' }])
// @ts-expect-error ping takes milliseconds or false
new EventSourceResponse([], { ping: true })
// @ts-expect-error sep is one of three separators
new EventSourceResponse([], { sep: '||' })

// The Node transport types ctx.request as the request it was given.
expectTypeOf(
  sendEventStream(req, res, (ctx) => {
    expectTypeOf(ctx).toEqualTypeOf<StreamContext<IncomingMessage>>()
    return []
  }),
).toEqualTypeOf<Promise<CloseReason>>()

// onError receives the request too, typed as the transport's: a one-argument hook still fits.
void sendEventStream(req, res, [], {
  onError: (error, request) => {
    expectTypeOf(error).toEqualTypeOf<unknown>()
    expectTypeOf(request).toEqualTypeOf<IncomingMessage>()
  },
})
void sendEventStream(req, res, [], { onError: (error: unknown) => void error })
new EventSourceResponse([], {
  onError: (_error, request) => expectTypeOf(request).toEqualTypeOf<Request | undefined>(),
})

expectTypeOf<
  'done' | 'disconnect' | 'shutdown' | 'timeout' | 'error' | 'rejected' | 'maxDuration'
>().toEqualTypeOf<CloseReason>()
expectTypeOf<string[]>().toExtend<Content>()
