/**
 * History bounded by age (`historyTtl`), on both brokers, over real sockets (and a real
 * redis-server): an expired event leaves the history and a resume from before it gets an
 * `expired` reset; a topic whose whole history expired is forgotten, and the broker-wide
 * watermark keeps that from turning into a silent gap (a resume from before a forgotten topic's
 * events, or into the topic published again, is a reset, never a resume past what expired);
 * positions newer than the expired events still resume normally.
 */

import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { Broadcaster, type Broker, MemoryBroker, RESET_EVENT } from '../../src/index.ts'
import { RedisBroker } from '../../src/redis.ts'
import { readEvents, shortDurations } from '../../src/testing.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { closeAllServers } from '../helpers/servers.ts'
import { Teardown } from '../helpers/teardown.ts'
import { waitFor } from '../helpers/wait.ts'
import { hubServer, takeHubServerErrors } from './hub-server.ts'

// Long enough that an event published just before a resume is still there under load; short
// enough that waiting for an expiry costs about a second.
const TTL = 1500

let redis: RedisServer
let raw: ReturnType<typeof createClient>
let prefixes = 0

beforeAll(async () => {
  redis = await startRedis()
  raw = createClient({ url: redis.url })
  await raw.connect()
})

afterAll(async () => {
  await raw?.close()
  await redis?.close()
})

const cleanup = new Teardown()
afterEach(async () => {
  try {
    await cleanup.run()
  } finally {
    await closeAllServers()
  }
  expect(takeHubServerErrors()).toEqual([])
})

const seqOf = (id: string) => Number(id.slice(id.lastIndexOf('-') + 1))

interface Kind {
  name: string
  make(): { broker: Broker; prefix: string }
}

const kinds: Kind[] = [
  { name: 'memory', make: () => ({ broker: new MemoryBroker(), prefix: '' }) },
  {
    name: 'redis',
    make: () => {
      const prefix = `ttl${++prefixes}`
      return { broker: new RedisBroker({ url: redis.url, prefix }), prefix }
    },
  },
]

function setup(kind: Kind, ttl = TTL) {
  const { broker, prefix } = kind.make()
  const hub = new Broadcaster(shortDurations({ broker, historyTtl: ttl }))
  cleanup.push(() => hub.close())
  return { broker, hub, prefix }
}

/** Waits until the broker reports `topic` trimmed through `seq`: its events up to it expired. */
function expired(broker: Broker, topic: string, seq: number) {
  return waitFor(
    `${topic} reported trimmed through ${seq}`,
    async () => (await broker.read([topic], 0, 0)).trimmed.get(topic) ?? 0,
    { until: (trimmed) => trimmed >= seq, interval: 20 },
  )
}

/** The first event a resume from `lastEventId` receives on `topic`. */
function firstOnResume(url: string, lastEventId: string) {
  return readEvents(url, { lastEventId, count: 1, timeout: 5000 })
}

const resetReason = (event: { event?: string | undefined; data: string }) =>
  event.event === RESET_EVENT ? (JSON.parse(event.data) as { reason: string }).reason : undefined

for (const kind of kinds) {
  describe(`${kind.name} broker`, () => {
    test('an expired event leaves the history: a resume from before it gets an expired reset', async () => {
      const { broker, hub } = setup(kind)
      const server = await hubServer(hub)
      const before = await hub.publish('other', 'x')
      const first = await hub.publish('feed', 'e1')
      await expired(broker, 'feed', seqOf(first))
      const second = await hub.publish('feed', 'e2')
      // From e1: nothing it lacks has expired, so it resumes and gets e2 exactly. (First, while
      // e2 is fresh.)
      const [next] = await firstOnResume(server.stream('feed'), first)
      expect(next).toMatchObject({ data: 'e2', id: second })
      // From before e1: e1 expired, so the client cannot resume without loss.
      const [reset] = await firstOnResume(server.stream('feed'), before)
      expect(resetReason(reset!)).toBe('expired')
    })

    test('no silent gap: a resume into a forgotten topic, or into it published again, is a reset', async () => {
      const { broker, hub } = setup(kind)
      const server = await hubServer(hub)
      const first = await hub.publish('job', 'e1')
      const second = await hub.publish('job', 'e2')
      await expired(broker, 'job', seqOf(second))
      // The client had e1 only: e2 expired with the topic, so it must be told.
      const [reset] = await firstOnResume(server.stream('job'), first)
      expect(resetReason(reset!)).toBe('expired')
      // Published again: a client positioned after what expired resumes normally into it...
      const third = await hub.publish('job', 'e3')
      const [fresh] = await firstOnResume(server.stream('job'), second)
      expect(fresh).toMatchObject({ data: 'e3', id: third })
      // ...but the new topic must not pass for the whole history since e1.
      const [again] = await firstOnResume(server.stream('job'), first)
      expect(resetReason(again!)).toBe('expired')
      // And a topic that never had events reports the same watermark: an old position resets,
      // a recent one does not.
      const [unknown] = await firstOnResume(server.stream('never'), first)
      expect(resetReason(unknown!)).toBe('expired')
      const tail = await hub.publish('never', 'n1')
      const [recent] = await firstOnResume(server.stream('never'), third)
      expect(recent).toMatchObject({ data: 'n1', id: tail })
    })

    test('live subscribers are unaffected: every event arrives once, across expiries', async () => {
      const { broker, hub } = setup(kind)
      const server = await hubServer(hub)
      const reading = readEvents(server.stream('live'), { count: 3, timeout: 5000 })
      await server.live(1)
      const a = await hub.publish('live', 'a')
      await expired(broker, 'live', seqOf(a))
      await hub.publish('live', 'b')
      await hub.publish('live', 'c')
      expect((await reading).map((event) => event.data)).toEqual(['a', 'b', 'c'])
    })
  })
}

describe('memory broker', () => {
  test('expired topics are forgotten by the sweep timer, and the watermark still holds', async () => {
    const broker = new MemoryBroker()
    const hub = new Broadcaster(shortDurations({ broker, historyTtl: TTL }))
    cleanup.push(() => hub.close())
    const server = await hubServer(hub)
    const ids: string[] = []
    for (let i = 0; i < 50; i++) ids.push(await hub.publish(`run:${i}`, `e${i}`))
    expect(broker.size).toBe(50)
    // No read, no publish: only the timer forgets them.
    await waitFor('every topic forgotten', () => broker.size, { until: (size) => size === 0 })
    const [reset] = await firstOnResume(server.stream('run:49'), ids[48]!)
    expect(resetReason(reset!)).toBe('expired')
  })
})

describe('redis broker', () => {
  const key = (prefix: string, name: string) => `{${prefix}}:${name}`

  test('history keys carry a TTL, and per-topic bookkeeping is removed on eviction', async () => {
    const { hub, prefix } = setup(kinds[1]!, 60_000)
    await hub.publish('job', 'e1')
    const pttl = await raw.pTTL(key(prefix, 'h:job'))
    expect(pttl).toBeGreaterThan(50_000)
    expect(pttl).toBeLessThanOrEqual(61_000)
    expect(await raw.zScore(key(prefix, 'topics'), 'job')).not.toBeNull()
    expect(await raw.hGet(key(prefix, 'last'), 'job')).not.toBeNull()
  })

  test('the topic set stays bounded: expired topics are evicted a bounded number at a time', async () => {
    const { hub, prefix } = setup(kinds[1]!)
    let last = ''
    for (let i = 0; i < 300; i++) last = await hub.publish(`run:${i}`, `e${i}`)
    expect(await raw.zCard(key(prefix, 'topics'))).toBeGreaterThan(0)
    // Each publish evicts expired topics (up to a bound): publish until the set has drained.
    await waitFor(
      'expired topics evicted',
      async () => {
        await hub.publish('tick', 'x')
        return [
          await raw.zCard(key(prefix, 'topics')),
          await raw.hLen(key(prefix, 'last')),
          await raw.hLen(key(prefix, 'trim')),
        ]
      },
      { until: (sizes) => sizes.every((size) => size <= 1), interval: TTL },
    )
    expect(Number(await raw.get(key(prefix, 'forgotten')))).toBeGreaterThanOrEqual(seqOf(last))
  })

  test("Redis's own expiry first: a stream key gone before eviction still means a reset", async () => {
    const { hub, prefix } = setup(kinds[1]!)
    const server = await hubServer(hub)
    const first = await hub.publish('job', 'e1')
    await hub.publish('job', 'e2')
    // Nothing of ours runs meanwhile: Redis deletes the key by itself.
    await waitFor('Redis expired the history key', () => raw.exists(key(prefix, 'h:job')), {
      until: (exists) => exists === 0,
      interval: 20,
    })
    expect(await raw.zScore(key(prefix, 'topics'), 'job')).not.toBeNull()
    const [reset] = await firstOnResume(server.stream('job'), first)
    expect(resetReason(reset!)).toBe('expired')
  })
})
