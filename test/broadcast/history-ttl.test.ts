/**
 * History bounded by age (`historyTtl`): how each broker keeps its bookkeeping bounded, over real
 * sockets (and a real redis-server). What every broker must do — an expired event leaves the
 * history and a resume from before it gets an `expired` reset; a topic whose whole history
 * expired is forgotten, and the broker-wide watermark keeps that from turning into a silent gap;
 * positions newer than the expired events still resume normally — is in the contract suite
 * (broker-contract.ts, run for every broker by brokers.test.ts).
 */

import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { Broadcaster, MemoryBroker, RESET_EVENT } from '../../src/index.ts'
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

/** A Redis broker under a prefix of its own, behind a broadcaster with `historyTtl: ttl`. */
function setup(ttl = TTL) {
  const prefix = `ttl${++prefixes}`
  const broker = new RedisBroker({ url: redis.url, prefix })
  const hub = new Broadcaster(shortDurations({ broker, historyTtl: ttl }))
  cleanup.push(() => hub.close())
  return { broker, hub, prefix }
}

/** The first event a resume from `lastEventId` receives on `topic`. */
function firstOnResume(url: string, lastEventId: string) {
  return readEvents(url, { lastEventId, count: 1, timeout: 5000 })
}

const resetReason = (event: { event?: string | undefined; data: string }) =>
  event.event === RESET_EVENT ? (JSON.parse(event.data) as { reason: string }).reason : undefined

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
    const { hub, prefix } = setup(60_000)
    await hub.publish('job', 'e1')
    const pttl = await raw.pTTL(key(prefix, 'h:job'))
    expect(pttl).toBeGreaterThan(50_000)
    expect(pttl).toBeLessThanOrEqual(61_000)
    expect(await raw.zScore(key(prefix, 'topics'), 'job')).not.toBeNull()
    expect(await raw.hGet(key(prefix, 'last'), 'job')).not.toBeNull()
  })

  test('the topic set stays bounded: expired topics are evicted a bounded number at a time', async () => {
    const { hub, prefix } = setup()
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
    const { hub, prefix } = setup()
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
