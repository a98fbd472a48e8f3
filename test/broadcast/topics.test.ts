/**
 * Topic names are checked the same way whatever the broker: a name with a lone surrogate is
 * refused. Redis stores names as UTF-8 and turned `'user:alice\uD800'` into `'user:alice\uFFFD'`,
 * so that subscriber read another topic's history and never received its own live events.
 */

import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { Broadcaster, type Broker, MemoryBroker } from '../../src/index.ts'
import { RedisBroker } from '../../src/redis.ts'
import { readEvents } from '../../src/testing.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { closeAllServers } from '../helpers/servers.ts'
import { hubServer, takeHubServerErrors } from './hub-server.ts'

let redis: RedisServer
beforeAll(async () => {
  redis = await startRedis()
})
afterEach(() => {
  expect(takeHubServerErrors()).toEqual([])
  expect(hubErrors.splice(0)).toEqual([])
})
afterAll(async () => {
  await closeAllServers()
  await redis.close()
})

/** What the hubs report: nothing, in these tests. */
const hubErrors: unknown[] = []

const brokers: Record<string, () => Broker> = {
  memory: () => new MemoryBroker(),
  redis: () => new RedisBroker({ url: redis.url }),
}

describe.each(Object.keys(brokers))('%s broker', (name) => {
  test('a topic with a lone surrogate is refused by publish and subscribe, naming the problem', async () => {
    const hub = new Broadcaster({
      broker: brokers[name]!(),
      onError: (error) => hubErrors.push(error),
    })
    try {
      for (const topic of ['user:alice\uD800', '\uDC00', 'a\uD800b']) {
        await expect(hub.publish(topic, 'x')).rejects.toMatchObject({
          code: 'ERR_SSE_INVALID_OPTION',
          message: expect.stringMatching(/well-formed Unicode.*lone surrogate/),
        })
        expect(() => hub.subscribe(['ok', topic])).toThrow(/well-formed Unicode/)
      }
      expect(hub.stats().published).toBe(0)
      expect(hub.subscribers()).toBe(0)
    } finally {
      await hub.close()
    }
  })

  test('well-formed names that differ only where a surrogate was stay apart', async () => {
    const hub = new Broadcaster({
      broker: brokers[name]!(),
      onError: (error) => hubErrors.push(error),
    })
    const server = await hubServer(hub)
    try {
      // A pair (one emoji) next to the replacement character: two topics, two feeds.
      const emoji = `user:${name}:\uD83D\uDE00`
      const replaced = `user:${name}:\uFFFD`
      const received = readEvents(server.stream(emoji), { count: 1 })
      await server.live(1)
      await hub.publish(replaced, 'not yours')
      const id = await hub.publish(emoji, 'yours')
      expect(await received).toEqual([expect.objectContaining({ id, data: 'yours' })])
    } finally {
      await hub.close()
    }
  })
})
