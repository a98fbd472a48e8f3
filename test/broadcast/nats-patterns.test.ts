/**
 * Pattern subscriptions on the NATS broker, across two Broadcaster instances on one nats-server
 * (the test's own, with a file store): live delivery of matching topics only, once each and in
 * order; a resume through a pattern on the other instance, and into a trimmed topic (a reset);
 * an outage of one instance (a TCP gate cuts its connection) and of NATS itself (a restart on
 * the same store), with publishes on both sides of it; a pattern and a plain subscriber of the
 * same topic on one instance; `topicsAfter` both ways it lists (walking the
 * messages, or reading each topic's newest seq), its watermark and its bound; and at the broker
 * itself, a topic listened to by name and through `listenAll` reaching the sink once, and an
 * `unlistenAll` before the first connection cancelling `listenAll`.
 */

import { connect } from '@nats-io/transport-node'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import { Broadcaster, type BrokerMessage, isSseError, RESET_EVENT } from '../../src/index.ts'
import { NatsBroker } from '../../src/nats.ts'
import { iterateEvents, type SseEvent, shortDurations } from '../../src/testing.ts'
import { type NatsServer, startNats } from '../helpers/nats.ts'
import { closeAllServers } from '../helpers/servers.ts'
import { startTcpGate } from '../helpers/tcp-gate.ts'
import { Teardown } from '../helpers/teardown.ts'
import { waitFor } from '../helpers/wait.ts'
import { type HubServer, hubServer, takeHubServerErrors } from './hub-server.ts'

let nats: NatsServer
let prefixes = 0
const cleanup = new Teardown()

beforeAll(async () => {
  nats = await startNats()
}, 30_000)
afterEach(async () => {
  try {
    await cleanup.run()
  } finally {
    await closeAllServers()
    if (!nats.running) await nats.start()
  }
  expect(takeHubServerErrors()).toEqual([])
})
afterAll(async () => {
  await nats?.close()
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
  outage?: boolean | undefined
}

/**
 * One "server process": a Broadcaster on a NatsBroker with a prefix (a stream) of the test's
 * own, behind an HTTP server. Unless `outage`, it must report no error at all; with it, only the
 * broker's (its catch-up retrying while NATS is away).
 */
async function instance(
  prefix: string,
  { url = nats.url, history, outage = false }: InstanceOptions,
): Promise<Instance> {
  const errors: unknown[] = []
  const hub = new Broadcaster(
    shortDurations({
      broker: new NatsBroker({ servers: url, prefix, commandTimeout: 5000 }),
      history,
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

/** Instances A and B on one prefix; `options` apply to B, and but for `url` to A too. */
async function pair(name: string, options: InstanceOptions) {
  const prefix = `${name}-${++prefixes}`
  const { url: _, ...shared } = options
  const a = await instance(prefix, shared)
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

/** A broker of the test's own, closed in teardown. */
function broker(prefix: string): NatsBroker {
  const made = new NatsBroker({ servers: nats.url, prefix, commandTimeout: 5000 })
  cleanup.push(() => made.close())
  return made
}

/** Publishes on `hub` until one is accepted (NATS coming back); each refusal the broker's. */
async function publishWhenBack(hub: Broadcaster, topic: string, data: string): Promise<string> {
  let id: string | undefined
  await waitFor(
    `"${data}" accepted once NATS is back`,
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
    ['user/42/a.b >', 'u2', 'user'],
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

test('a pattern and a plain subscriber of one topic on one instance: each event once, in order, as the pattern comes and goes', async () => {
  const { a, b } = await pair('mixed', {})
  const plain = collect(b.server.stream('orders/1'))
  await b.server.live(1)
  const all: string[] = []
  const publish = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const data = `e${all.length}`
      await a.hub.publish('orders/1', data)
      all.push(data)
    }
  }
  await publish(5)
  // The pattern arrives while A publishes: B subscribes to every topic mid-stream.
  const publishing = publish(30)
  const pattern = collect(b.server.stream('orders/*'))
  const both = collect(b.server.stream('orders/*', 'orders/1'))
  await b.server.live(3)
  await publishing
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
  // The last pattern subscriber leaves while A publishes: no gap, nothing twice for `plain`.
  const publishingAgain = publish(30)
  await Promise.all([pattern.stop(), both.stop()])
  await waitFor('B has only the plain subscriber', () => b.hub.stats().subscribers, {
    until: (n) => n === 1,
  })
  await publishingAgain
  await publish(5)
  await plain.has(all.length, 'plain')
  expect(plain.data()).toEqual(all)
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

test("B's connection cut while A publishes: B's pattern subscriber catches up, topics new to B included", async () => {
  const gate = await startTcpGate(nats.port)
  cleanup.push(() => gate.close())
  const { a, b } = await pair('gate', { url: `nats://127.0.0.1:${gate.port}`, outage: true })
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
  await a.hub.publish('orders/1', 'e5')

  await pattern.has(5, 'pattern')
  await plain.has(3, 'plain')
  expect(pattern.data()).toEqual(['e1', 'e2', 'e3', 'e4', 'e5'])
  expect(plain.data()).toEqual(['e1', 'e2', 'e5'])
})

test('NATS stops and starts on the same store: the pattern subscriber gets everything accepted, nothing twice', async () => {
  const { a, b } = await pair('outage', { outage: true })
  const pattern = collect(b.server.stream('orders/*'))
  const plain = collect(b.server.stream('orders/1'))
  await b.server.live(2)
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

  await nats.stop()
  await expect(a.hub.publish('orders/1', 'during')).rejects.toMatchObject({
    code: 'ERR_SSE_BROKER',
  })
  await nats.start()
  // As soon as A is back, whether or not B is: on a topic B listens to by name as well, and on
  // one new to it.
  await publishWhenBack(a.hub, 'orders/1', 'after 1')
  accepted.push('after 1')
  for (const [topic, data] of [
    ['orders/new', 'after 2'],
    ['orders/x/y', 'not'],
    ['orders/2', 'after 3'],
  ] as const) {
    await publishWhenBack(a.hub, topic, data)
    if (data !== 'not') accepted.push(data)
  }
  await publishWhenBack(b.hub, 'orders/3', 'after 4')
  accepted.push('after 4')
  await publishWhenBack(b.hub, 'orders/1', 'after 5')
  accepted.push('after 5')

  await pattern.has(accepted.length, 'pattern')
  // The store survived: the same epoch, so no reset, and every accepted event once, in order.
  expect(pattern.data()).toEqual(accepted)
  const seqs = pattern.read().map((event) => seqOf(event.id))
  expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
  await plain.has(3, 'plain')
  expect(plain.data()).toEqual(['before 1', 'after 1', 'after 5'])
}, 60_000)

test('topicsAfter lists the topics with history since a position, walking the messages or reading each topic', async () => {
  const publisher = broker(`index-${++prefixes}`)
  const seqs: number[] = []
  for (let i = 0; i < 50; i++) seqs.push((await publisher.publish(`t/${i}`, 'x', 10)).seq)
  const head = seqs.at(-1)!
  const names = (from: number, to = 50) =>
    Array.from({ length: to - from }, (_, i) => `t/${from + i}`).sort()
  // Fewer messages since the position than topics: walked, in slices.
  for (const from of [10, 47, 49]) {
    const listing = await publisher.topicsAfter(seqs[from - 1]!)
    expect({ ...listing, topics: listing.topics.sort() }).toEqual({
      topics: names(from),
      forgotten: 0,
      head,
    })
  }
  // As many as topics: each topic's newest seq read.
  const all = await publisher.topicsAfter(0)
  expect({ ...all, topics: all.topics.sort() }).toEqual({ topics: names(0), forgotten: 0, head })
  // Published again: a topic is listed once, whichever way.
  await publisher.publish('t/3', 'y', 10)
  await publisher.publish('t/3', 'z', 10)
  expect((await publisher.topicsAfter(head)).topics).toEqual(['t/3'])
  expect((await publisher.topicsAfter(0)).topics.sort()).toEqual(names(0))
  expect(await publisher.topicsAfter(head + 2)).toEqual({
    topics: [],
    forgotten: 0,
    head: head + 2,
  })
  // Another broker on the prefix, before anything was published on it: the same answer.
  expect((await broker(`index-${prefixes}`).topicsAfter(head + 1)).topics).toEqual(['t/3'])
})

test('topicsAfter: what expired is forgotten, and the watermark covers it', async () => {
  const publisher = broker(`expiry-${++prefixes}`)
  await publisher.publish('a', 'x', 10, 300)
  const b = await publisher.publish('b', 'x', 10, 300)
  // Expired: the stream's first message moves past them, and no topic is left to list.
  const listing = await waitFor('a and b expired', () => publisher.topicsAfter(0), {
    until: (found) => found.topics.length === 0,
    timeout: 20_000,
    interval: 50,
  })
  expect(listing).toEqual({ topics: [], forgotten: b.seq, head: b.seq })
})

test('more than 10 000 topics changed since a position: the listing says so, and a resume through a pattern is a reset', async () => {
  const { a, b, prefix } = await pair('bounded', {})
  const first = collect(a.server.stream('orders/*'))
  await a.server.live(1)
  const seenId = await a.hub.publish('orders/1', 'seen')
  await first.has(1, 'first connection')
  await first.stop()
  // 10 001 topics published since then, straight into the stream's subjects.
  const epoch = seenId.split('-')[0]
  const nc = await connect({ servers: nats.url })
  cleanup.push(() => nc.close())
  for (let i = 0; i < 10_001; i++) {
    const token = Buffer.from(`f/${i}`, 'utf8').toString('base64url')
    nc.publish(`${prefix}.${epoch}.t._${token}`, 'x')
  }
  await nc.flush()
  const listing = await waitFor('all 10 001 stored', () => broker(prefix).topicsAfter(0), {
    until: (found) => found.head === seqOf(seenId) + 10_001,
    timeout: 30_000,
    interval: 100,
  })
  expect(listing).toEqual({ topics: [], forgotten: listing.head, head: listing.head })
  const resumed = collect(b.server.stream('orders/*'), seenId)
  await b.server.live(1)
  const [reset] = await resumed.has(1, 'resumed')
  expect(reset!.event).toBe(RESET_EVENT)
  expect(JSON.parse(reset!.data)).toEqual({ reason: 'expired', topics: ['orders/*'] })
}, 60_000)

test('the broker itself: a topic listened to by name and through listenAll reaches the sink once; unlistenAll stops the rest', async () => {
  const prefix = `sink-${++prefixes}`
  const listener = broker(prefix)
  const publisher = broker(prefix)
  // Another prefix on the same server: never delivered.
  const stranger = broker(`${prefix}x`)
  const got: BrokerMessage[] = []
  listener.attach({ message: (message) => got.push(message), interrupted() {}, resync() {} })
  await listener.listen('t')
  await listener.listenAll()
  const expected: number[] = []
  for (let i = 0; i < 5; i++) {
    await stranger.publish('t', 'stranger', 10)
    expected.push((await publisher.publish('t', `t${i}`, 10)).seq)
    expected.push((await publisher.publish('u', `u${i}`, 10)).seq)
  }
  await waitFor('every message', () => got.length, { until: (n) => n >= expected.length })
  await listener.unlistenAll()
  // By name only now: `t` still comes, `u` no longer.
  await publisher.publish('u', 'u-after', 10)
  expected.push((await publisher.publish('t', 't-after', 10)).seq)
  await waitFor('t-after', () => got.at(-1)?.payload, { until: (payload) => payload === 't-after' })
  expect(got.map((message) => message.seq)).toEqual(expected)
  expect(got.some((message) => message.payload === 'stranger')).toBe(false)
  expect(new Set(got.map((message) => message.topic))).toEqual(new Set(['t', 'u']))
})

test('the broker itself: unlistenAll before the first connection is made cancels listenAll', async () => {
  const prefix = `early-${++prefixes}`
  const listener = broker(prefix)
  const publisher = broker(prefix)
  const got: BrokerMessage[] = []
  listener.attach({ message: (message) => got.push(message), interrupted() {}, resync() {} })
  const listening = listener.listenAll()
  await listener.unlistenAll()
  await listening
  await listener.listen('t')
  await publisher.publish('u', 'u', 10)
  await publisher.publish('t', 't', 10)
  await waitFor('t', () => got.length, { until: (n) => n >= 1 })
  expect(got.map((message) => message.payload)).toEqual(['t'])
})
