/**
 * Pattern subscriptions on the Redis broker, across two Broadcaster instances on one
 * redis-server (the test's own, with persistence): live delivery of matching topics only, once
 * each and in order; a resume through a pattern on the other instance; an outage of one
 * instance (a TCP gate cuts its connections) and of Redis itself, with publishes on both sides
 * of it; a pattern and a plain subscriber of the same topic on one instance; and `PSUBSCRIBE`
 * held only while a pattern subscriber exists.
 */

import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import { Broadcaster, type BrokerMessage, isSseError, RESET_EVENT } from '../../src/index.ts'
import { RedisBroker } from '../../src/redis.ts'
import { iterateEvents, type SseEvent, shortDurations } from '../../src/testing.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { closeAllServers } from '../helpers/servers.ts'
import { startTcpGate } from '../helpers/tcp-gate.ts'
import { Teardown } from '../helpers/teardown.ts'
import { waitFor } from '../helpers/wait.ts'
import { type HubServer, hubServer, takeHubServerErrors } from './hub-server.ts'

let redis: RedisServer
let prefixes = 0
const cleanup = new Teardown()

beforeAll(async () => {
  redis = await startRedis({ persist: true })
}, 30_000)
afterEach(async () => {
  try {
    await cleanup.run()
  } finally {
    await closeAllServers()
    if (!redis.running) await redis.start()
  }
  expect(takeHubServerErrors()).toEqual([])
})
afterAll(async () => {
  await redis?.close()
})

interface Instance {
  hub: Broadcaster
  server: HubServer
  /** What the hub reported through `onError`. */
  errors: unknown[]
}

interface InstanceOptions {
  url?: string | undefined
  history?: number | undefined
  historyTtl?: number | undefined
  outage?: boolean | undefined
}

/**
 * One "server process": a Broadcaster on a RedisBroker with a key prefix of the test's own,
 * behind an HTTP server. Unless `outage`, it must report no error at all; with it, only the
 * broker's (its catch-up retrying while Redis is away).
 */
async function instance(
  prefix: string,
  { url = redis.url, history, historyTtl, outage = false }: InstanceOptions,
): Promise<Instance> {
  const errors: unknown[] = []
  const hub = new Broadcaster(
    shortDurations({
      broker: new RedisBroker({ url, prefix, commandTimeout: 5000 }),
      history,
      historyTtl,
      onError: (error: unknown) => errors.push(error),
    }),
  )
  cleanup.push(async () => {
    await hub.close()
    if (!outage) expect(errors).toEqual([])
    for (const error of errors) {
      if (!isSseError(error) || error.code !== 'ERR_SSE_BROKER') throw error
    }
  })
  return { hub, server: await hubServer(hub), errors }
}

/**
 * Instances A and B on one prefix; `options` apply to B, and but for `url` to A too, unless
 * `aOptions` are given.
 */
async function pair(name: string, options: InstanceOptions, aOptions?: InstanceOptions) {
  const prefix = `${name}-${++prefixes}`
  const { url: _, ...shared } = options
  const a = await instance(prefix, aOptions ?? shared)
  const b = await instance(prefix, options)
  return { a, b, prefix }
}

/**
 * A client reading a stream in the background until stopped; a stream that fails makes `read()`
 * throw its error, so a wait on the client fails at once with the cause.
 */
function collect(url: string, lastEventId?: string) {
  const events: SseEvent[] = []
  const controller = new AbortController()
  let failure: { error: unknown } | undefined
  const done = (async () => {
    try {
      for await (const event of iterateEvents(url, {
        signal: controller.signal,
        timeout: 60_000,
        lastEventId,
      })) {
        events.push(event)
      }
    } catch (error) {
      if (!controller.signal.aborted) failure = { error }
    }
  })()
  cleanup.push(async () => {
    controller.abort()
    await done
  })
  const read = () => {
    if (failure) throw new Error(`the stream of ${url} failed`, { cause: failure.error })
    return events
  }
  return {
    read,
    data: () => read().map((event) => event.data),
    async stop() {
      controller.abort()
      await done
    },
    /** Waits until `count` events arrived; returns them. */
    has(count: number, what: string) {
      return waitFor(`${what}: ${count} events`, read, {
        until: (list) => list.length >= count,
        timeout: 20_000,
      })
    },
  }
}

/** One command on a connection of its own (the broker's may be down). */
async function command(args: string[]): Promise<unknown> {
  const admin = createClient({ url: redis.url })
  admin.on('error', () => {})
  await admin.connect()
  try {
    return await admin.sendCommand(args)
  } finally {
    await admin.close()
  }
}

/** How many patterns are subscribed on the server (`PUBSUB NUMPAT`). */
const numpat = async () => Number(await command(['PUBSUB', 'NUMPAT']))

/** How many connections hold a pattern subscription (`psub=` of `CLIENT LIST`). */
async function patternConnections(): Promise<number> {
  const list = String(await command(['CLIENT', 'LIST']))
  return [...list.matchAll(/ psub=(\d+)/g)].filter((match) => match[1] !== '0').length
}

/** Publishes on `hub` until one is accepted (Redis coming back); each refusal the broker's. */
async function publishWhenBack(hub: Broadcaster, topic: string, data: string): Promise<string> {
  let id: string | undefined
  await waitFor(
    `"${data}" accepted once Redis is back`,
    async () => {
      try {
        id = await hub.publish(topic, data)
      } catch (error) {
        if (!isSseError(error) || error.code !== 'ERR_SSE_BROKER') throw error
      }
      return id
    },
    { timeout: 20_000, interval: 20 },
  )
  return id!
}

const seqOf = (id: string | undefined) => Number(id?.split('-')[1])

test('a pattern subscriber on B gets what A publishes on matching topics only, once each, in order', async () => {
  const { a, b } = await pair('live', {})
  const orders = collect(b.server.stream('orders/*'))
  const user = collect(b.server.stream('user/42/**'))
  await b.server.live(2)
  // One PSUBSCRIBE, on B's listening connection; A listens to nothing.
  expect(await numpat()).toBe(1)
  expect(await patternConnections()).toBe(1)

  const expected = { orders: [] as string[], user: [] as string[] }
  const ids = new Map<string, string>()
  const published: Array<[string, string, 'orders' | 'user' | undefined]> = [
    ['orders/1', 'o1', 'orders'],
    ['orders/1/items', 'not: too deep for *', undefined],
    ['news', 'not: another topic', undefined],
    ['user/42/inbox', 'u1', 'user'],
    ['orders', 'not: * needs a segment', undefined],
    ['orders/2', 'o2', 'orders'],
    ['user/43/inbox', 'not: another user', undefined],
    ['ordersx/1', 'not: another first segment', undefined],
    ['user/42/a/b', 'u2', 'user'],
    ['user/42', 'not: ** needs a segment', undefined],
    ['orders/1', 'o3', 'orders'],
    ['user/42/inbox', 'u3', 'user'],
  ]
  for (const [topic, data, to] of published) {
    const id = await a.hub.publish(topic, data)
    ids.set(data, id)
    if (to) expected[to].push(data)
  }
  // The last event of each list is the last one published to it: once it is in, anything that
  // should not have come would have come before it.
  await orders.has(expected.orders.length, 'orders/*')
  await user.has(expected.user.length, 'user/42/**')
  expect(orders.data()).toEqual(expected.orders)
  expect(user.data()).toEqual(expected.user)
  for (const event of [...orders.read(), ...user.read()]) expect(event.id).toBe(ids.get(event.data))
})

test('a pattern and a plain subscriber of one topic on one instance: each event once; PSUBSCRIBE only while a pattern is open', async () => {
  const { a, b } = await pair('mixed', {})
  const plain = collect(b.server.stream('orders/1'))
  await b.server.live(1)
  expect(await numpat()).toBe(0)
  const all: string[] = []
  const publish = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const data = `e${all.length}`
      await a.hub.publish('orders/1', data)
      all.push(data)
    }
  }
  await publish(5)
  // The pattern arrives while A publishes: B switches to PSUBSCRIBE mid-stream.
  const publishing = publish(30)
  const pattern = collect(b.server.stream('orders/*'))
  const both = collect(b.server.stream('orders/*', 'orders/1'))
  await b.server.live(3)
  await publishing
  expect(await numpat()).toBe(1)
  await publish(5)
  await a.hub.publish('orders/2', 'other')
  await waitFor('the pattern subscribers got "other"', () => [pattern.data(), both.data()], {
    until: (lists) => lists.every((list) => list.at(-1) === 'other'),
  })
  // Each joined somewhere in the middle: from there on, every event once, in order.
  for (const client of [pattern, both]) {
    const received = client.data().slice(0, -1)
    expect(received.length).toBeGreaterThanOrEqual(5)
    expect(received).toEqual(all.slice(all.length - received.length))
  }

  // The last pattern subscriber leaves while A publishes: B switches back, no gap for `plain`.
  const publishingAgain = publish(30)
  await Promise.all([pattern.stop(), both.stop()])
  await waitFor('no pattern subscribed (PUBSUB NUMPAT)', numpat, {
    until: (n) => n === 0,
    interval: 20,
  })
  await publishingAgain
  await publish(5)
  await plain.has(all.length, 'plain')
  expect(plain.data()).toEqual(all)
  expect(await patternConnections()).toBe(0)
})

test('Last-Event-ID through a pattern, on the other instance: exactly the missed matching events', async () => {
  const { a, b } = await pair('resume', {})
  const first = collect(a.server.stream('orders/*'))
  await a.server.live(1)
  await a.hub.publish('orders/1', 'seen 1')
  await a.hub.publish('orders/2', 'seen 2')
  const [, last] = await first.has(2, 'first connection')
  await first.stop()
  // Away: matching topics (one never published before), and others.
  await a.hub.publish('orders/1', 'missed 1')
  await a.hub.publish('news', 'not')
  await a.hub.publish('orders/2/deep', 'not')
  await a.hub.publish('orders/new', 'missed 2')
  await b.hub.publish('user/1', 'not')
  await b.hub.publish('orders/2', 'missed 3')

  const resumed = collect(b.server.stream('orders/*'), last!.id)
  await b.server.live(1)
  await a.hub.publish('orders/3', 'live')
  await resumed.has(4, 'resumed')
  expect(resumed.data()).toEqual(['missed 1', 'missed 2', 'missed 3', 'live'])
  const seqs = resumed.read().map((event) => seqOf(event.id))
  expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
})

test('a resume through a pattern into a topic whose history was trimmed meanwhile is a reset', async () => {
  const { a, b } = await pair('trimmed', { history: 2 })
  const first = collect(a.server.stream('orders/*'))
  await a.server.live(1)
  await a.hub.publish('orders/1', 'seen')
  const [seen] = await first.has(1, 'first connection')
  await first.stop()
  // Three on a history of two: the first of them is gone.
  for (const data of ['m1', 'm2', 'm3']) await a.hub.publish('orders/1', data)
  const resumed = collect(b.server.stream('orders/*'), seen!.id)
  await b.server.live(1)
  await a.hub.publish('orders/1', 'live')
  await resumed.has(2, 'resumed')
  const [reset, live] = resumed.read()
  expect(reset!.event).toBe(RESET_EVENT)
  expect(JSON.parse(reset!.data)).toEqual({ reason: 'expired', topics: ['orders/*'] })
  expect(live!.data).toBe('live')
})

test("B's connections cut while A publishes: B's pattern subscriber catches up, topics new to B included", async () => {
  const gate = await startTcpGate(redis.port)
  cleanup.push(() => gate.close())
  const { a, b } = await pair('gate', { url: `redis://127.0.0.1:${gate.port}`, outage: true })
  const pattern = collect(b.server.stream('orders/*'))
  const plain = collect(b.server.stream('orders/1'))
  await b.server.live(2)
  await a.hub.publish('orders/1', 'e1')
  await pattern.has(1, 'pattern')
  await plain.has(1, 'plain')

  gate.cut()
  // Published while B hears nothing: on a topic B listens to, and on one it has never seen.
  await a.hub.publish('orders/1', 'e2')
  await a.hub.publish('orders/new', 'e3')
  await a.hub.publish('news', 'not')
  await a.hub.publish('orders/2/deep', 'not')
  gate.open()
  await a.hub.publish('orders/new', 'e4')
  await waitFor('B reconnected: its pattern is subscribed again', numpat, {
    until: (n) => n === 1,
    interval: 20,
  })
  await a.hub.publish('orders/1', 'e5')

  await pattern.has(5, 'pattern')
  await plain.has(3, 'plain')
  expect(pattern.data()).toEqual(['e1', 'e2', 'e3', 'e4', 'e5'])
  expect(plain.data()).toEqual(['e1', 'e2', 'e5'])
})

/** B behind a gate, with one pattern subscriber that has received `e1`. */
async function gated(name: string, options: InstanceOptions, aOptions?: InstanceOptions) {
  const gate = await startTcpGate(redis.port)
  cleanup.push(() => gate.close())
  const { a, b } = await pair(
    name,
    { ...options, url: `redis://127.0.0.1:${gate.port}`, outage: true },
    aOptions,
  )
  const pattern = collect(b.server.stream('orders/*'))
  await b.server.live(1)
  await a.hub.publish('orders/1', 'e1')
  await pattern.has(1, 'pattern')
  return { a, b, gate, pattern }
}

/**
 * Expects `e1`, then an `expired` reset (the gap was announced, not skipped), then what is
 * published after it. (An event published before the reset reached the client may be folded
 * into it: the reset's id is the head when it was decided, and the client reloads from there.)
 */
async function expectExpiredReset(a: Instance, pattern: ReturnType<typeof collect>) {
  const [e1, reset] = await pattern.has(2, 'pattern, the reset')
  expect(e1!.data).toBe('e1')
  expect(reset!.event).toBe(RESET_EVENT)
  expect(JSON.parse(reset!.data)).toEqual({ reason: 'expired', topics: ['orders/*'] })
  const id = await a.hub.publish('orders/2', 'live')
  const events = await pattern.has(3, 'pattern, live')
  expect(events.slice(2)).toEqual([{ id, data: 'live' }])
}

test("B cut while a matching topic overflows its history: B's pattern subscriber is told (reset)", async () => {
  const { a, gate, pattern } = await gated('overflow', { history: 1 })
  gate.cut()
  await a.hub.publish('orders/1', 'lost')
  await a.hub.publish('orders/1', 'kept')
  gate.open()
  await expectExpiredReset(a, pattern)
})

test("B cut while a matching topic's whole history expires: B's pattern subscriber is told (reset)", async () => {
  const { a, gate, pattern } = await gated('expiry', { historyTtl: 200 })
  gate.cut()
  await a.hub.publish('orders/gone', 'lost')
  // Past its expiry: the next script to look forgets it, raising the watermark.
  const deadline = Date.now() + 300
  await waitFor('the history of orders/gone expired', () => Date.now(), {
    until: (now) => now > deadline,
    interval: 20,
  })
  gate.open()
  await expectExpiredReset(a, pattern)
})

test('B cut while a matching topic is first published after others expired: caught up, no reset', async () => {
  // A topic new since the watermark rose starts trimmed there: older than anything B delivered
  // live before the cut, so nothing was lost to its subscriber, however quiet its pattern is
  // (its own position, e1, is older than the watermark). B's events expire after 200 ms, A's
  // last a day: nothing A publishes expires during the test.
  const { a, b, gate, pattern } = await gated('quiet', { historyTtl: 200 }, {})
  const another = collect(b.server.stream('another'))
  await b.server.live(2)
  await b.hub.publish('other', 'x')
  const deadline = Date.now() + 300
  await waitFor('x expired', () => Date.now(), { until: (now) => now > deadline })
  // This publish forgets `other` (the watermark rises past e1); B has it before the cut (its
  // subscriber received it), so B's gap starts after the watermark.
  await a.hub.publish('another', 'y')
  await another.has(1, 'another')
  gate.cut()
  const id = await a.hub.publish('orders/new', 'n1')
  gate.open()
  await pattern.has(2, 'pattern')
  await a.hub.publish('another', 'z')
  await another.has(2, 'another')
  expect(pattern.read().slice(1)).toEqual([{ id, data: 'n1' }])
  expect(another.data()).toEqual(['y', 'z'])
})

test('Redis stops and starts (persistence): the pattern subscriber gets everything accepted, nothing twice', async () => {
  const { a, b } = await pair('outage', { outage: true })
  const pattern = collect(b.server.stream('orders/*'))
  await b.server.live(1)
  const accepted: string[] = []
  for (const [topic, data] of [
    ['orders/1', 'before 1'],
    ['news', 'not'],
    ['orders/2', 'before 2'],
  ] as const) {
    await a.hub.publish(topic, data)
    if (topic !== 'news') accepted.push(data)
  }
  await pattern.has(2, 'before the outage')

  await redis.stop()
  await expect(a.hub.publish('orders/1', 'during')).rejects.toMatchObject({
    code: 'ERR_SSE_BROKER',
  })
  await redis.start()
  // As soon as A is back, whether or not B is: on a topic B saw, and on one new to it.
  accepted.push('after 1')
  await publishWhenBack(a.hub, 'orders/1', 'after 1')
  for (const [topic, data] of [
    ['orders/new', 'after 2'],
    ['orders/x/y', 'not'],
    ['orders/2', 'after 3'],
  ] as const) {
    await publishWhenBack(a.hub, topic, data)
    if (data !== 'not') accepted.push(data)
  }
  await waitFor('B listens again', numpat, {
    until: (n) => n === 1,
    interval: 20,
  })
  await publishWhenBack(b.hub, 'orders/3', 'after 4')
  accepted.push('after 4')

  await pattern.has(accepted.length, 'pattern')
  // Redis kept its data: the same epoch, so no reset, and every accepted event once, in order.
  expect(pattern.data()).toEqual(accepted)
  const seqs = pattern.read().map((event) => seqOf(event.id))
  expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
}, 60_000)

test('topicsAfter lists topics with history since a position, and forgets expired ones with them', async () => {
  const prefix = `index-${++prefixes}`
  const broker = new RedisBroker({ url: redis.url, prefix })
  cleanup.push(() => broker.close())
  const a1 = await broker.publish('a', 'x', 10)
  await broker.publish('b', 'x', 10)
  await broker.publish('a', 'y', 10)
  expect((await broker.topicsAfter(a1.seq - 1)).topics.sort()).toEqual(['a', 'b'])
  expect(await broker.topicsAfter(a1.seq + 1)).toEqual({
    topics: ['a'],
    forgotten: 0,
    head: a1.seq + 2,
  })
  // Once `c` has expired, the listing forgets it (as a publish would): gone from the index,
  // and the watermark rises to its newest seq, so a resume from before it is a reset.
  const c = await broker.publish('c', 'x', 10, 200)
  const expired = await waitFor('c forgotten', () => broker.topicsAfter(0), {
    until: (listing) => !listing.topics.includes('c'),
    interval: 50,
  })
  expect(expired).toEqual({ topics: ['b', 'a'], forgotten: c.seq, head: c.seq })
  expect(await command(['ZRANGE', `{${prefix}}:newest`, '0', '-1'])).toEqual(['b', 'a'])
})

test('more than 10 000 topics changed since a position: the listing says so, and a resume through a pattern is a reset', async () => {
  const { a, b, prefix } = await pair('bounded', {})
  const first = collect(a.server.stream('orders/*'))
  await a.server.live(1)
  await a.hub.publish('orders/1', 'seen')
  const [seen] = await first.has(1, 'first connection')
  await first.stop()
  // 10 001 topics published since then, as the publish script records them (seq and index).
  await command([
    'EVAL',
    "for i = 1, 10001 do redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[1]), 'f/' .. i) end",
    '2',
    `{${prefix}}:seq`,
    `{${prefix}}:newest`,
  ])
  const resumed = collect(b.server.stream('orders/*'), seen!.id)
  await b.server.live(1)
  const [reset] = await resumed.has(1, 'resumed')
  expect(reset!.event).toBe(RESET_EVENT)
  expect(JSON.parse(reset!.data)).toEqual({ reason: 'expired', topics: ['orders/*'] })
})

test('the broker itself: a topic listened to by name and through the pattern reaches the sink once; glob characters in the prefix are literal', async () => {
  const prefix = `glob*[${++prefixes}]`
  const broker = new RedisBroker({ url: redis.url, prefix })
  const publisher = new RedisBroker({ url: redis.url, prefix })
  // Its prefix matches the first one's read as a glob: `*` and `[n]` must be taken literally.
  const stranger = new RedisBroker({ url: redis.url, prefix: `globX${prefixes}` })
  for (const each of [broker, publisher, stranger]) cleanup.push(() => each.close())
  const got: BrokerMessage[] = []
  broker.attach({ message: (message) => got.push(message), interrupted() {}, resync() {} })
  await broker.listen('t')
  await broker.listenAll()
  expect(await numpat()).toBe(1)
  const expected: number[] = []
  for (let i = 0; i < 5; i++) {
    await stranger.publish('t', 'stranger', 10)
    expected.push((await publisher.publish('t', `t${i}`, 10)).seq)
    expected.push((await publisher.publish('u', `u${i}`, 10)).seq)
  }
  await waitFor('every message', () => got.length, { until: (n) => n >= expected.length })
  await broker.unlistenAll()
  expect(await numpat()).toBe(0)
  // By name only now: `t` still comes, `u` no longer.
  await publisher.publish('u', 'u-after', 10)
  expected.push((await publisher.publish('t', 't-after', 10)).seq)
  await waitFor('t-after', () => got.at(-1)?.payload, { until: (payload) => payload === 't-after' })
  expect(got.map((message) => message.seq)).toEqual(expected)
  expect(got.some((message) => message.payload === 'stranger')).toBe(false)
})
