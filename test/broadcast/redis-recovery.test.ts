/**
 * Every interruption of a Redis broker's live feed ends, whatever this instance was listening
 * to when it happened. An instance with no subscribers during a connection blip used to hold
 * live messages forever afterwards: the catch-up that ends the hold was only asked for when
 * some topic was listened to.
 */

import { createClient } from 'redis'
import { afterEach, expect, test } from 'vitest'
import { Broadcaster } from '../../src/index.ts'
import { RedisBroker } from '../../src/redis.ts'
import { readEvents } from '../../src/testing.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { closeAllServers } from '../helpers/servers.ts'
import { Teardown } from '../helpers/teardown.ts'
import { waitFor } from '../helpers/wait.ts'
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

/** The ids of the clients connected to `redis`, other than `admin` itself. */
async function clientIds(admin: {
  sendCommand(args: string[]): Promise<unknown>
}): Promise<string[]> {
  const list = String(await admin.sendCommand(['CLIENT', 'LIST']))
  const own = String(await admin.sendCommand(['CLIENT', 'ID']))
  return [...list.matchAll(/^id=(\d+)/gm)].map((match) => match[1]!).filter((id) => id !== own)
}

/**
 * Waits until the broker's two connections are back: ids none of which is in `before` (after a
 * restart, pass `[]`: every connection to the new server is new, and it numbers them from 1
 * again). Redis is up (restarted, or never stopped), so a failure to ask is a failure.
 */
async function brokerReconnected(redis: RedisServer, before: string[]): Promise<void> {
  const admin = createClient({ url: redis.url })
  const adminErrors: unknown[] = []
  admin.on('error', (error) => adminErrors.push(error))
  await admin.connect()
  try {
    await waitFor('the broker reconnected (client ids)', () => clientIds(admin), {
      until: (ids) => ids.length >= 2 && ids.every((id) => !before.includes(id)),
      interval: 20,
    })
  } finally {
    await admin.close()
  }
  expect(adminErrors).toEqual([])
}

async function setup(persist: boolean) {
  const redis = await startRedis({ persist })
  cleanup.push(() => redis.close())
  const errors: unknown[] = []
  // Nobody is subscribed during the blip, so nothing is read and nothing can fail.
  cleanup.push(async () => expect(errors).toEqual([]))
  const hub = new Broadcaster({
    broker: new RedisBroker({ url: redis.url, commandTimeout: 2000 }),
    onError: (error) => errors.push(error),
  })
  cleanup.push(() => hub.close())
  // The broker is connected (a publish went through) before the blip.
  await hub.publish('warm-up', 'x')
  const admin = createClient({ url: redis.url })
  admin.on('error', () => {})
  await admin.connect()
  const before = await clientIds(admin)
  await admin.close()
  expect(before).toHaveLength(2)
  return { redis, hub, before }
}

/** With nobody subscribed: a client subscribes, an event is published, the client gets it. */
async function deliversAfterwards(hub: Broadcaster) {
  expect(hub.subscribers()).toBe(0)
  const server = await hubServer(hub)
  const events = readEvents(server.stream('news'), { count: 1, timeout: 10_000 })
  await server.live(1)
  const id = await hub.publish('news', 'after the blip')
  expect(await events).toEqual([expect.objectContaining({ id, data: 'after the blip' })])
}

test('connections killed while nobody is subscribed: live events flow again', async () => {
  const { redis, hub, before } = await setup(false)
  const admin = createClient({ url: redis.url })
  admin.on('error', () => {})
  await admin.connect()
  await admin.sendCommand(['CLIENT', 'KILL', 'SKIPME', 'yes'])
  await admin.close()
  await brokerReconnected(redis, before)
  await deliversAfterwards(hub)
})

test('Redis restarted with its data while nobody is subscribed: live events flow again', async () => {
  const { redis, hub } = await setup(true)
  await redis.stop()
  await redis.start()
  await brokerReconnected(redis, [])
  await deliversAfterwards(hub)
})

test('Redis restarted empty while nobody is subscribed: live events flow again', async () => {
  const { redis, hub } = await setup(false)
  await redis.stop()
  await redis.start()
  await brokerReconnected(redis, [])
  await deliversAfterwards(hub)
})

test('Redis restarted and still loading its data: no error, and a subscriber then gets live events', async () => {
  // 20 000 keys loaded 100 µs apart (Redis's key-load-delay), serving clients every KiB read:
  // seconds during which Redis accepts connections and answers LOADING (seen once in CI with a
  // small file, whose load also serves clients once). The broker's connections come back in
  // that window (node-redis retries within 2.2 s); its catch-up must wait for the data, not
  // report a failure.
  const redis = await startRedis({
    persist: true,
    args: ['--key-load-delay', '100', '--loading-process-events-interval-bytes', '1024'],
  })
  cleanup.push(() => redis.close())
  const admin = createClient({ url: redis.url })
  admin.on('error', () => {})
  await admin.connect()
  await admin.sendCommand([
    'EVAL',
    "for i = 1, 20000 do redis.call('SET', 'filler:' .. i, i) end",
    '0',
  ])
  // Rewritten into the append-only file's RDB base, which is what key-load-delay slows down.
  await admin.sendCommand(['BGREWRITEAOF'])
  await waitFor(
    'the append-only file rewritten',
    async () => String(await admin.sendCommand(['INFO', 'persistence'])),
    {
      until: (info) =>
        /aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info),
    },
  )
  await admin.close()
  const errors: unknown[] = []
  cleanup.push(async () => expect(errors).toEqual([]))
  const hub = new Broadcaster({
    broker: new RedisBroker({ url: redis.url, commandTimeout: 10_000 }),
    onError: (error) => errors.push(error),
  })
  cleanup.push(() => hub.close())
  await hub.publish('warm-up', 'x')
  await redis.stop()
  const started = performance.now()
  // resolves once Redis says it is ready: the data is loaded
  const restarted = redis.start().then(() => performance.now() - started)
  // Publishes meanwhile are refused at once, as not published: first while the broker is
  // disconnected, then while Redis answers LOADING (it runs no command then). The first one
  // accepted ends the loop: Redis has loaded, and its ready line is on its way.
  const refusals: string[] = []
  let loaded = false
  void restarted.then(() => {
    loaded = true
  })
  while (!loaded) {
    const refusal = await hub.publish('news', 'during the restart').then(
      () => undefined,
      (error: unknown) => error,
    )
    if (refusal === undefined) break
    expect(refusal).toMatchObject({ code: 'ERR_SSE_BROKER' })
    refusals.push((refusal as Error).message)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const loadingMs = await restarted
  expect(refusals.filter((message) => !message.includes('the event was not published'))).toEqual([])
  expect(refusals.filter((message) => message.includes('still loading')).length).toBeGreaterThan(0)
  await brokerReconnected(redis, [])
  await deliversAfterwards(hub)
  console.info(JSON.stringify({ loadingMs: Math.round(loadingMs), refused: refusals.length }))
}, 30_000)
