/**
 * Every options object Oven takes refuses a name it does not know, with one message: which
 * option, for what, and the names it does know. A typo would otherwise do nothing.
 */

import { describe, expect, test } from 'vitest'
import {
  Broadcaster,
  ConnectionLimiter,
  EventSourceResponse,
  installShutdownHandlers,
  isSseError,
} from '../../src/index.ts'
import { NatsBroker } from '../../src/nats.ts'
import { RedisBroker } from '../../src/redis.ts'
import { readEvents } from '../../src/testing.ts'

/** Runs `call` and returns what it threw (synchronously or as a rejection). */
async function thrown(call: () => unknown): Promise<unknown> {
  try {
    await call()
  } catch (error) {
    return error
  }
  throw new Error('expected the call to throw, and it returned')
}

const cases: Array<[owner: string, call: () => unknown, known: string]> = [
  [
    'a stream',
    () => new EventSourceResponse([], { sendTimout: 5 } as never),
    'status, headers, ping, pingMessage, sep, sendTimeout, maxDuration, retry, serialize, ' +
      'dataSender, ' +
      'onClose, onError, registry, shutdownGrace, onShutdown, limit, request',
  ],
  [
    'Broadcaster',
    () => new Broadcaster({ sendTimout: 5 } as never),
    'broker, history, historyTtl, queue, maxResume, maxTopics, overflow, serialize, onError, ' +
      'contract, authorize, authorizeTimeout, privateTopics',
  ],
  [
    'subscribe()',
    () => new Broadcaster().subscribe('news', { sendTimout: 5 } as never),
    'lastEventId, signal, filter, request',
  ],
  [
    'installShutdownHandlers()',
    () => installShutdownHandlers({ close() {} }, { sendTimout: 5 } as never),
    'registry, grace, signals, forceAfter, exit, onDone',
  ],
  [
    'ConnectionLimiter',
    () => new ConnectionLimiter({ sendTimout: 5 } as never),
    'max, maxPerKey, key, retryAfter',
  ],
  [
    'RedisBroker',
    () => new RedisBroker({ url: 'redis://127.0.0.1:1', sendTimout: 5 } as never),
    'url, client, prefix, commandTimeout',
  ],
  [
    'NatsBroker',
    () => new NatsBroker({ servers: 'nats://127.0.0.1:1', sendTimout: 5 } as never),
    'servers, connection, prefix, commandTimeout, storage, replicas',
  ],
  [
    'the reading helpers',
    () => readEvents(new EventSourceResponse(['x']), { sendTimout: 5 } as never),
    'count, timeout, signal, headers, lastEventId',
  ],
]

describe('an unknown option name', () => {
  for (const [owner, call, known] of cases) {
    test(`is refused by ${owner}, naming the option and the known ones`, async () => {
      const error = await thrown(call)
      expect(isSseError(error) && error.code).toBe('ERR_SSE_INVALID_OPTION')
      expect((error as Error).message).toBe(
        `Unknown option "sendTimout" for ${owner}; the options are: ${known}.`,
      )
    })
  }
})

describe('options that are not an object', () => {
  test.each([
    ['a stream', () => new EventSourceResponse([], 5 as never)],
    ['Broadcaster', () => new Broadcaster(5 as never)],
    ['ConnectionLimiter', () => new ConnectionLimiter(5 as never)],
    ['RedisBroker', () => new RedisBroker(5 as never)],
    ['NatsBroker', () => new NatsBroker(5 as never)],
  ])('are refused by %s', async (owner, call) => {
    const error = await thrown(call)
    expect((error as Error).message).toBe(
      `Invalid options for ${owner}: expected an object, received number 5.`,
    )
  })
})
