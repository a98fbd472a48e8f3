/**
 * A resume from far back is bounded: whether the client can resume is decided before any
 * history is read, the history is read in pages, and a client that missed more than
 * `maxResume` events is told to reset instead of being replayed them. Before, one request with
 * an old id read the whole retained history of every topic in one Redis script (200 topics ×
 * 1000 events held Redis, and so every client, for 1.2 s).
 */

import { afterEach, expect, test } from 'vitest'
import {
  Broadcaster,
  type Broker,
  type HistoryRead,
  MemoryBroker,
  RESET_EVENT,
} from '../../src/index.ts'
import { RedisBroker } from '../../src/redis.ts'
import { readEvents } from '../../src/testing.ts'
import { startRedis } from '../helpers/redis.ts'
import { closeAllServers } from '../helpers/servers.ts'
import { Teardown } from '../helpers/teardown.ts'
import { hubServer, takeHubServerErrors } from './hub-server.ts'

const cleanup = new Teardown()
afterEach(async () => {
  try {
    await cleanup.run()
  } finally {
    await closeAllServers()
  }
  expect(takeHubServerErrors()).toEqual([])
})

/** A broker that records every history read: its limit and how many messages it returned. */
function recording(inner: Broker) {
  const reads: Array<{ limit: number; returned: number }> = []
  const broker: Broker = {
    attach: (sink) => inner.attach(sink),
    publish: (...args) => inner.publish(...args),
    listen: (topic) => inner.listen(topic),
    unlisten: (topic) => inner.unlisten(topic),
    close: () => inner.close(),
    async read(topics, after, limit): Promise<HistoryRead> {
      const read = await inner.read(topics, after, limit)
      reads.push({ limit, returned: read.messages.length })
      return read
    },
  }
  return { broker, reads }
}

const TOPICS = ['a', 'b', 'c', 'd', 'e']

/** Publishes `count` events round-robin over TOPICS; returns their ids. */
async function publishMany(hub: Broadcaster, count: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < count; i++) ids.push(await hub.publish(TOPICS[i % TOPICS.length]!, `e${i}`))
  return ids
}

test('a resume far back is read in pages and gets every missed event, in order', async () => {
  const { broker, reads } = recording(new MemoryBroker())
  const hub = new Broadcaster({ broker, history: 5000, maxResume: 20_000 })
  cleanup.push(() => hub.close())
  const server = await hubServer(hub)
  const ids = await publishMany(hub, 12_000)
  reads.length = 0
  const events = await readEvents(server.stream(...TOPICS), {
    lastEventId: ids[0]!,
    count: 11_999,
    timeout: 15_000,
  })
  expect(events.map((event) => event.data)).toEqual(
    Array.from({ length: 11_999 }, (_, i) => `e${i + 1}`),
  )
  // The decision first (nothing read), then pages of at most 1000 messages.
  expect(reads[0]).toEqual({ limit: 0, returned: 0 })
  expect(reads.length).toBeGreaterThanOrEqual(13)
  for (const read of reads) expect(read.returned).toBeLessThanOrEqual(1000)
})

test('a client that missed more than maxResume events is told to reset, after bounded reads', async () => {
  const { broker, reads } = recording(new MemoryBroker())
  const hub = new Broadcaster({ broker, history: 5000, maxResume: 1500 })
  cleanup.push(() => hub.close())
  const server = await hubServer(hub)
  const ids = await publishMany(hub, 4000)
  reads.length = 0
  const received = readEvents(server.stream(...TOPICS), { lastEventId: ids[0]!, count: 2 })
  await server.live(1)
  const liveId = await hub.publish('a', 'live')
  const [reset, live] = await received
  expect(reset).toMatchObject({ event: RESET_EVENT, id: ids.at(-1) })
  expect(JSON.parse(reset!.data)).toEqual({ reason: 'expired', topics: TOPICS })
  expect(live).toMatchObject({ id: liveId, data: 'live' })
  // It stopped reading once past maxResume: two pages, not the 3999 events it missed.
  const returned = reads.reduce((sum, read) => sum + read.returned, 0)
  expect(returned).toBeLessThanOrEqual(2000)
  expect(hub.stats().resets).toBe(1)
})

test('Redis: a resume across pages of several topics is exact', async () => {
  const errors: unknown[] = []
  const redis = await startRedis()
  cleanup.push(() => redis.close())
  const hub = new Broadcaster({
    broker: new RedisBroker({ url: redis.url }),
    history: 3000,
    onError: (error) => errors.push(error),
  })
  cleanup.push(() => hub.close())
  const server = await hubServer(hub)
  // Uneven topics: a page's share per topic runs out at different positions.
  const ids: string[] = []
  for (let i = 0; i < 2500; i++) {
    const topic = i % 7 === 0 ? 'rare' : i % 2 === 0 ? 'even' : 'odd'
    ids.push(await hub.publish(topic, `e${i}`))
  }
  const events = await readEvents(server.stream('odd', 'even', 'rare'), {
    lastEventId: ids[9]!,
    count: 2490,
    timeout: 15_000,
  })
  expect(events.map((event) => event.data)).toEqual(
    Array.from({ length: 2490 }, (_, i) => `e${i + 10}`),
  )
  expect(events.map((event) => event.id)).toEqual(ids.slice(10))
  expect(errors).toEqual([])
})
