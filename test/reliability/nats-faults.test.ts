/**
 * NATS faults over real sockets: a nats-server with JetStream killed (SIGKILL) and restarted on
 * the same store while events are published every few ms, frozen (SIGSTOP) mid-request, and
 * restarted with its store wiped. Publishes are confirmed by JetStream or refused loudly
 * (ERR_SSE_BROKER) within `commandTimeout`; after the restart subscribers catch up, and nothing
 * accepted is lost. The outage is measured and printed as JSON.
 */

import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import {
  Broadcaster,
  isSseError,
  RESET_EVENT,
  StreamRegistry,
  type Subscription,
} from '../../src/index.ts'
import { NatsBroker } from '../../src/nats.ts'
import { sendEventStream } from '../../src/node.ts'
import { iterateEvents, type SseEvent } from '../../src/testing.ts'
import { type NatsServer, startNats } from '../helpers/nats.ts'
import { closeAllServers, nodeServer, type TestServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'
import { sleep } from './support.ts'

// One nats-server for the file; the outage tests kill it and `afterEach` brings it back. Every
// test uses a prefix (a stream) of its own.
let nats: NatsServer
const hubs: Broadcaster[] = []
let prefixes = 0
const uniquePrefix = (name: string) => `${name}-${++prefixes}`

beforeAll(async () => {
  nats = await startNats()
}, 30_000)
afterEach(async () => {
  await closeAllServers()
  await Promise.all(hubs.splice(0).map((hub) => hub.close()))
  if (!nats.running) await nats.start()
})
afterAll(async () => {
  await nats?.close()
})

/** The code of a broker refusal, or the error itself when it is anything else. */
function brokerCode(error: unknown): string {
  if (isSseError(error) && error.code === 'ERR_SSE_BROKER') return error.code
  throw error
}

interface Instance {
  hub: Broadcaster
  server: TestServer
  subscriptions: Subscription[]
}

/** One "server process": a broadcaster on the shared NATS behind an HTTP server. */
async function instance(
  prefix: string,
  errors: unknown[],
  { commandTimeout = 1000 } = {},
): Promise<Instance> {
  const hub = new Broadcaster({
    broker: new NatsBroker({ servers: nats.url, prefix, commandTimeout }),
    onError: (error) => errors.push(error),
  })
  hubs.push(hub)
  const registry = new StreamRegistry()
  const subscriptions: Subscription[] = []
  const server = await nodeServer((req, res) => {
    void sendEventStream(
      req,
      res,
      (ctx) => {
        const subscription = hub.subscribe(['news'], ctx)
        subscriptions.push(subscription)
        return subscription
      },
      { registry, onError: (error) => errors.push(error) },
    )
  })
  return { hub, server, subscriptions }
}

async function allLive(instances: Instance[], count: number): Promise<void> {
  const all = () => instances.flatMap((i) => i.subscriptions)
  await waitFor(`${count} subscriptions made`, () => all().length, { until: (n) => n >= count })
  await Promise.all(all().map((subscription) => subscription.ready))
}

/** A client reading a stream in the background; a failed stream fails the waits on it. */
function collect(server: TestServer) {
  const events: SseEvent[] = []
  const controller = new AbortController()
  let failure: { error: unknown } | undefined
  const done = (async () => {
    try {
      for await (const event of iterateEvents(server.url, {
        signal: controller.signal,
        timeout: 120_000,
      })) {
        events.push(event)
      }
    } catch (error) {
      failure = { error }
    }
  })()
  const check = () => {
    if (failure) throw new Error('the client stream failed', { cause: failure.error })
  }
  return {
    events,
    data: () => {
      check()
      return events.filter((e) => e.event !== RESET_EVENT).map((e) => e.data)
    },
    async stop() {
      controller.abort()
      await done
      check()
    },
  }
}

/** Settles `promise` into a record a wait can look at. */
function settle<T>(promise: Promise<T>) {
  const started = performance.now()
  const state: { value?: T; error?: unknown; ms?: number } = {}
  void promise.then(
    (value) => Object.assign(state, { value, ms: performance.now() - started }),
    (error: unknown) => Object.assign(state, { error, ms: performance.now() - started }),
  )
  return state
}

describe('nats-server killed and restarted with its store', () => {
  for (const signal of ['SIGKILL', 'SIGSTOP then SIGKILL'] as const) {
    test(`${signal} during continuous publishing: refusals are loud, subscribers catch up, nothing accepted is lost`, async () => {
      const errors: unknown[] = []
      const prefix = uniquePrefix('pub')
      const a = await instance(prefix, errors)
      const b = await instance(prefix, errors)
      const clients = [collect(a.server), collect(b.server), collect(b.server)]
      await allLive([a, b], 3)
      await a.hub.publish('news', 'warm-up')
      await waitFor('every client received the warm-up', () =>
        clients.every((c) => c.data().includes('warm-up')),
      )

      const accepted: string[] = []
      const refusals: Array<{ at: number; ms: number }> = []
      const acceptedAt: number[] = []
      let phase = 'before' as 'before' | 'down' | 'after'
      const whileDown: Array<'accepted' | 'refused'> = []
      let stop = false
      const publisher = (async () => {
        for (let i = 0; !stop && i < 100_000; i++) {
          const data = `${phase} ${i}`
          const startedDown = phase === 'down'
          const started = performance.now()
          try {
            await (i % 2 === 0 ? a : b).hub.publish('news', data)
            accepted.push(data)
            acceptedAt.push(performance.now())
            if (startedDown) whileDown.push('accepted')
          } catch (error) {
            brokerCode(error)
            refusals.push({ at: started, ms: performance.now() - started })
            if (startedDown) whileDown.push('refused')
          }
          await sleep(5)
        }
      })()
      const count = (label: string) => accepted.filter((d) => d.startsWith(label)).length
      await waitFor('20 publishes accepted before the outage', () => count('before'), {
        until: (n) => n >= 20,
      })
      const killedAt = performance.now()
      if (signal === 'SIGSTOP then SIGKILL') {
        // Hung first (connections open, nothing answered), then gone: the publishes in flight
        // fail on their deadline, the next ones as soon as the connection drops.
        await nats.freeze()
        await waitFor('a publish refused while frozen', () => refusals.length, {
          until: (n) => n >= 1,
        })
      }
      phase = 'down'
      await nats.stop()
      await waitFor('10 publishes refused while NATS is down', () => whileDown.length, {
        until: (n) => n >= 10,
        timeout: 20_000,
      })
      expect(nats.running).toBe(false)
      const restartedAt = performance.now()
      await nats.start()
      phase = 'after'
      await waitFor('40 publishes accepted after the restart', () => count('after'), {
        until: (n) => n >= 40,
        timeout: 20_000,
      })
      stop = true
      await publisher

      // NATS was gone for every one of these: none may be reported as accepted.
      expect(whileDown.filter((outcome) => outcome === 'accepted')).toEqual([])
      const firstAfter = acceptedAt[accepted.findIndex((d) => d.startsWith('after'))]!
      // The store survived: every accepted event, before and after, reaches every client, in
      // order, once, with no reset (the history is the same one).
      const everything = ['warm-up', ...accepted]
      for (const [index, client] of clients.entries()) {
        await waitFor(
          `client ${index} received every accepted event`,
          () => everything.filter((d) => !client.data().includes(d)),
          { until: (missing) => missing.length === 0, timeout: 20_000 },
        )
      }
      const caughtUpAt = performance.now()
      for (const client of clients) {
        const data = client.data()
        expect(data.filter((d) => everything.includes(d))).toEqual(everything)
        expect(new Set(data).size).toBe(data.length)
        expect(client.events.filter((e) => e.event === RESET_EVENT)).toEqual([])
      }
      await Promise.all(clients.map((c) => c.stop()))
      // Only the catch-up reads that failed while NATS was down may have been reported.
      for (const error of errors) expect(brokerCode(error)).toBe('ERR_SSE_BROKER')
      const refusedAfterKill = refusals.filter((r) => r.at >= killedAt)
      console.info(
        JSON.stringify({
          signal,
          detectMs: Math.round(refusedAfterKill[0]!.at + refusedAfterKill[0]!.ms - killedAt),
          slowestRefusalMs: Math.round(Math.max(...refusals.map((r) => r.ms))),
          refused: refusals.length,
          recoverMs: Math.round(firstAfter - restartedAt),
          catchUpMs: Math.round(caughtUpAt - restartedAt),
          acceptedBefore: count('before'),
          acceptedAfter: count('after'),
          // Every client's copy of the events accepted after the restart.
          deliveredAfterReturn: clients
            .map((c) => c.data().filter((d) => d.startsWith('after')).length)
            .reduce((sum, n) => sum + n, 0),
          clients: clients.length,
        }),
      )
    }, 90_000)
  }

  test('restarted with its store wiped: subscribers are told (lost), then get what follows', async () => {
    const errors: unknown[] = []
    const prefix = uniquePrefix('wipe')
    const a = await instance(prefix, errors)
    const b = await instance(prefix, errors)
    const clients = [collect(a.server), collect(b.server)]
    await allLive([a, b], 2)
    const before = await a.hub.publish('news', 'before')
    await waitFor('both clients received "before"', () =>
      clients.every((c) => c.data().includes('before')),
    )
    await nats.stop()
    await nats.wipe()
    await nats.start()
    const after: string[] = []
    for (let i = 0; after.length < 5 && i < 2000; i++) {
      const data = `after ${i}`
      const outcome = await (i % 2 ? b : a).hub.publish('news', data).then(
        () => true,
        (error: unknown) => brokerCode(error) === '',
      )
      if (outcome) after.push(data)
      else await sleep(10)
    }
    expect(after).toHaveLength(5)
    for (const [index, client] of clients.entries()) {
      await waitFor(`client ${index} received the 5 events after the wipe`, () =>
        after.every((d) => client.data().includes(d)),
      )
      const [first, reset, ...rest] = client.events
      expect(first!.data).toBe('before')
      expect(reset!.event).toBe(RESET_EVENT)
      expect(JSON.parse(reset!.data)).toMatchObject({ reason: 'lost', topics: ['news'] })
      expect(rest.map((event) => event.data)).toEqual(after)
      expect(reset!.id!.split('-')[0]).not.toBe(before.split('-')[0])
    }
    await Promise.all(clients.map((c) => c.stop()))
    for (const error of errors) expect(brokerCode(error)).toBe('ERR_SSE_BROKER')
  }, 60_000)
})

test('clients that subscribe while NATS is down get everything published after recovery', async () => {
  const prefix = uniquePrefix('sub')
  const errors: unknown[] = []
  const a = await instance(prefix, errors)
  const b = await instance(prefix, errors)
  await a.hub.publish('news', 'before a')
  await b.hub.publish('news', 'before b')
  await nats.stop()
  const late = [collect(a.server), collect(b.server)]
  await waitFor(
    'both clients subscribed while NATS is down',
    () => [a.hub.subscribers('news'), b.hub.subscribers('news')],
    { until: ([x, y]) => x === 1 && y === 1 },
  )
  expect(nats.running).toBe(false)
  await nats.start()
  await allLive([a, b], 2)
  const published: string[] = []
  for (let i = 0; published.length < 20 && i < 2000; i++) {
    const data = `after recovery ${i}`
    const ok = await (i % 2 === 0 ? a : b).hub.publish('news', data).then(
      () => true,
      (error: unknown) => brokerCode(error) === '',
    )
    if (ok) published.push(data)
    else await sleep(10)
  }
  for (const [index, client] of late.entries()) {
    await waitFor(`late client ${index} received all 20`, () => client.events.length, {
      until: (n) => n >= published.length,
    })
    expect(client.events.map((e) => e.data)).toEqual(published)
  }
  await Promise.all(late.map((c) => c.stop()))
  for (const error of errors) expect(brokerCode(error)).toBe('ERR_SSE_BROKER')
}, 60_000)

test('the stream deleted while everyone stays connected: a new epoch, subscribers are told (lost)', async () => {
  const errors: unknown[] = []
  const prefix = uniquePrefix('deleted')
  const a = await instance(prefix, errors)
  const b = await instance(prefix, errors)
  const clients = [collect(a.server), collect(b.server)]
  await allLive([a, b], 2)
  const before = await a.hub.publish('news', 'before')
  await waitFor('both clients received "before"', () =>
    clients.every((c) => c.data().includes('before')),
  )
  // An operator deletes the stream; the next publish makes it again, numbered from 1.
  const { connect } = await import('@nats-io/transport-node')
  const { jetstreamManager } = await import('@nats-io/jetstream')
  const admin = await connect({ servers: nats.url })
  try {
    await (await jetstreamManager(admin)).streams.delete(prefix)
  } finally {
    await admin.close()
  }
  const after = [await b.hub.publish('news', 'after 0'), await a.hub.publish('news', 'after 1')]
  expect(after.map((id) => id.split('-')[0])).not.toContain(before.split('-')[0])
  for (const [index, client] of clients.entries()) {
    await waitFor(`client ${index} received both events after the deletion`, () =>
      ['after 0', 'after 1'].every((d) => client.data().includes(d)),
    )
    const [first, reset, ...rest] = client.events
    expect(first!.data).toBe('before')
    expect(reset!.event).toBe(RESET_EVENT)
    expect(JSON.parse(reset!.data)).toMatchObject({ reason: 'lost', topics: ['news'] })
    expect(rest.map((event) => event.id)).toEqual(after)
  }
  await Promise.all(clients.map((c) => c.stop()))
  expect(errors).toEqual([])
})

describe('a publish never waits for NATS to come back', () => {
  test('NATS that takes the request and never answers: publish and read fail within commandTimeout', async () => {
    const prefix = uniquePrefix('frozen')
    const broker = new NatsBroker({ servers: nats.url, prefix, commandTimeout: 300 })
    const hub = new Broadcaster({ broker, onError: () => {} })
    hubs.push(hub)
    await hub.publish('news', 'connected')
    await nats.freeze()
    let publish: ReturnType<typeof settle<string>>
    let read: ReturnType<typeof settle<unknown>>
    try {
      publish = settle(hub.publish('news', 'frozen'))
      read = settle(broker.read(['news'], 0, 10))
      await waitFor('publish and read settled while NATS is frozen', () => [publish.ms, read.ms], {
        until: (ms) => ms.every((x) => x !== undefined),
      })
    } finally {
      nats.thaw()
    }
    // NATS has the message and may store it: the refusal says so.
    expect(publish.error).toMatchObject({
      code: 'ERR_SSE_BROKER',
      message: expect.stringMatching(/may not have been published.*no answer from NATS in 300 ms/),
    })
    expect(read.error).toMatchObject({
      code: 'ERR_SSE_BROKER',
      message: expect.stringMatching(/history read failed.*no answer from NATS in 300 ms/),
    })
    // It was stored once NATS thawed: "may not have been published" was the honest answer.
    const history = await waitFor(
      'the timed-out publish stored once NATS thawed',
      async () => (await broker.read(['news'], 0, 10)).messages,
      { until: (messages) => messages.length === 2 },
    )
    expect(history.map((m) => JSON.parse(m.payload).d)).toEqual(['connected', 'frozen'])
    await hub.publish('news', 'thawed')
    console.info(
      JSON.stringify({
        frozenPublishMs: Math.round(publish.ms!),
        frozenReadMs: Math.round(read.ms!),
      }),
    )
  }, 30_000)

  test('a connection of your own is used and left open; bad options are clear errors', async () => {
    const { connect } = await import('@nats-io/transport-node')
    const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1 })
    const hub = new Broadcaster({ broker: new NatsBroker({ connection: nc, prefix: 'own' }) })
    const subscription = hub.subscribe('mine')
    await subscription.ready
    const id = await hub.publish('mine', { event: 'note', data: { n: 1 } })
    const { value } = await subscription[Symbol.asyncIterator]().next()
    expect(value).toMatchObject({ id, event: 'note', data: '{"n":1}' })
    await hub.close()
    expect(nc.isClosed()).toBe(false)
    await nc.close()
    for (const [options, message] of [
      [{}, /Invalid option "servers": expected a NATS URL/],
      [{ servers: nats.url, prefix: 'a.b' }, /Invalid option "prefix": expected 1 to 64 letters/],
      [
        { servers: nats.url, storage: 'disk' },
        /Invalid option "storage": expected "file" or "memory", received string "disk"/,
      ],
      [{ servers: nats.url, replicas: 7 }, /Invalid option "replicas"/],
      [{ servers: nats.url, commandTimeout: -1 }, /Invalid option "commandTimeout"/],
      [{ servers: nats.url, url: nats.url }, /Unknown option "url" for NatsBroker/],
      [{ connection: {} }, /Invalid option "connection": expected a NATS connection/],
    ] as const) {
      expect(() => new NatsBroker(options as never)).toThrow(
        expect.objectContaining({
          code: 'ERR_SSE_INVALID_OPTION',
          message: expect.stringMatching(message),
        }),
      )
    }
  })
})
