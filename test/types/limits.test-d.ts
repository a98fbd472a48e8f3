/** Type tests for connection limiters: checked by `tsc --noEmit`, not run. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { expectTypeOf } from 'vitest'
import {
  type Admission,
  ConnectionLimiter,
  EventSourceResponse,
  type Limiter,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { RedisConnectionLimiter } from '../../src/redis.ts'
import { openEventSourceResponse } from '../../src/transports/web-open.ts'

declare const req: IncomingMessage
declare const res: ServerResponse

// Both limiters are Limiters, typed with the request their key function reads.
expectTypeOf<ConnectionLimiter<Request>>().toExtend<Limiter<Request>>()
expectTypeOf<RedisConnectionLimiter<Request>>().toExtend<Limiter<Request>>()
expectTypeOf<RedisConnectionLimiter['acquire']>().returns.toEqualTypeOf<Promise<Admission>>()
expectTypeOf<ConnectionLimiter['acquire']>().returns.toEqualTypeOf<Admission>()

const redisNode = new RedisConnectionLimiter<IncomingMessage>({
  url: 'redis://localhost:6379',
  maxPerKey: 2,
  key: (request) => request.socket.remoteAddress,
})
sendEventStream(req, res, ['a'], { limit: redisNode })

// On the web path a limiter typed with Request fits, as ConnectionLimiter<Request> does.
const redisWeb = new RedisConnectionLimiter<Request>({
  url: 'redis://localhost:6379',
  key: (request) => request.headers.get('x-user') ?? undefined,
})
void openEventSourceResponse(['a'], { limit: redisWeb })
new EventSourceResponse(['a'], { limit: new ConnectionLimiter<Request>({ max: 1 }) })

// A limiter of your own: anything with acquire and retryAfterHeader.
const custom: Limiter<IncomingMessage> = {
  retryAfterHeader: '5',
  acquire: async () => () => {},
}
sendEventStream(req, res, ['a'], { limit: custom })

// @ts-expect-error whenUnreachable is 'reject' or 'admit'
new RedisConnectionLimiter({ url: 'redis://x', whenUnreachable: 'open' })
// @ts-expect-error a limiter must answer with a release function or undefined
const wrong: Limiter = { retryAfterHeader: '5', acquire: () => true }
void wrong
