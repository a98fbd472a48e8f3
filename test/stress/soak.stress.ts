/**
 * Load with faults, as one run (stress tier, a few minutes): 5 000 broadcast subscribers on a
 * Redis broker while clients leave at random, some stop reading, Redis is killed and restarted
 * twice, and `closeAll` ends the rest.
 *
 * What must hold: every client that stayed received exactly the events whose publish was
 * accepted, in order, once each; every stream's `onClose` ran exactly once, with the reason its
 * client's fate implies; the broadcaster's counters match what the clients saw; and the heap
 * returns to where it was.
 */

import { request } from 'node:http'
import type { Socket } from 'node:net'
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { Broadcaster, type CloseReason, StreamRegistry } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { instrumentOven } from '../../src/otel.ts'
import { RedisBroker } from '../../src/redis.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { stalledClient } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'
import { mb, settledHeap } from '../reliability/support.ts'

const TOPICS = 10
/** The shape of a run: how many clients of each kind, how many rounds, when Redis dies. */
interface Shape {
  stayers: number
  leavers: number
  stuck: number
  rounds: number
  /** Rounds at which Redis is killed; it is back `outageRounds` rounds later. */
  outages: number[]
  outageRounds: number
}

const FULL: Shape = {
  stayers: 4400,
  leavers: 500,
  /** Few: each takes megabytes before its kernel buffers are full and it overflows. */
  stuck: 100,
  rounds: 150,
  outages: [40, 95],
  outageRounds: 10,
}
/** The same code paths, small: run first, so the baseline heap already holds compiled code. */
const WARM_UP: Shape = {
  stayers: 40,
  leavers: 10,
  stuck: 2,
  rounds: 12,
  outages: [4],
  outageRounds: 2,
}

/**
 * Stuck readers subscribe to a topic of big events, published until every one has overflowed:
 * loopback socket buffers grow to several MiB before a write is refused, so it takes that much.
 */
const HEAVY_EVENTS = 1000
const HEAVY_SIZE = 64 * 1024

let redis: RedisServer
beforeAll(async () => {
  redis = await startRedis({ persist: true })
})
afterAll(async () => {
  await closeAllServers()
  await redis.close()
})

/** A metrics reader the test collects from when it wants. */
class PullReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve()
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve()
  }
}

/** The value of a counter point of `name` with `attributes` (`reason=done`), 0 when absent. */
async function metric(reader: MetricReader, name: string, attributes = ''): Promise<number> {
  const { resourceMetrics } = await reader.collect()
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const found of scope.metrics) {
      if (found.descriptor.name !== name) continue
      for (const point of found.dataPoints) {
        const key = Object.entries(point.attributes)
          .map(([key, value]) => `${key}=${String(value)}`)
          .join(',')
        if (key === attributes) return point.value as number
      }
    }
  }
  return 0
}

/** A client that reads the stream and keeps only the `data:` values, parsed as it goes. */
interface Reader {
  readonly data: string[]
  readonly ended: Promise<'end' | 'close'>
  destroy(): void
}

function read(url: string): Promise<Reader> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { connection: 'keep-alive' } })
    req.on('error', reject)
    req.on('response', (res) => {
      const data: string[] = []
      let rest = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        const lines = (rest + chunk).split('\n')
        rest = lines.pop()!
        for (const line of lines) {
          if (line.startsWith('data: ')) data.push(line.slice(6, line.indexOf('|')))
        }
      })
      res.on('error', () => {})
      const ended = new Promise<'end' | 'close'>((done) => {
        res.once('end', () => done('end'))
        res.once('close', () => done(res.complete ? 'end' : 'close'))
      })
      resolve({ data, ended, destroy: () => req.destroy() })
    })
    req.end()
  })
}

test('5 000 subscribers through random departures, stuck readers and two Redis outages', async () => {
  await scenario(WARM_UP)
  const baseline = await settledHeap()
  // Everything the run holds lives in scenario()'s scope, so it is garbage once it returns.
  const summary = await scenario(FULL)
  const after = await settledHeap()
  console.info(JSON.stringify({ ...summary, heapBeforeMb: mb(baseline), heapAfterMb: mb(after) }))
  // Back to baseline: within 5 MB, as the issue sets it.
  expect(Math.abs(after - baseline)).toBeLessThan(5 * 1024 * 1024)
}, 600_000)

async function scenario(shape: Shape) {
  const { stayers: stayerCount, leavers: leaverCount, stuck: stuckCount } = shape
  const { rounds, outages, outageRounds } = shape
  const reader = new PullReader()
  const provider = new MeterProvider({ readers: [reader] })
  const instrumentation = instrumentOven({ meter: provider.getMeter('soak') })
  const registry = new StreamRegistry()
  const brokerErrors: unknown[] = []
  const otherErrors: unknown[] = []
  const hub = new Broadcaster({
    broker: new RedisBroker({ url: redis.url, commandTimeout: 2000 }),
    queue: 20,
    onError: (error) => brokerErrors.push(error),
  })
  const closes = new Map<number, CloseReason[]>()
  let next = 0
  const server = await nodeServer((req, res) => {
    const id = next++
    closes.set(id, [])
    const topic = new URL(req.url ?? '/', 'http://x').searchParams.get('topic')!
    void sendEventStream(req, res, (ctx) => hub.subscribe(topic, ctx), {
      registry,
      onClose: (reason) => closes.get(id)!.push(reason),
      onError: (error) => otherErrors.push(error),
    })
  })
  server.server.maxConnections = stayerCount + leaverCount + stuckCount + 100
  const port = Number(new URL(server.url).port)
  const topicOf = (i: number) => `t${i % TOPICS}`

  // Open everyone, in waves; then wait until all 5 000 subscriptions are live.
  const stayers: Reader[] = []
  const leavers: Reader[] = []
  const stuck: Socket[] = []
  for (let i = 0; i < stayerCount + leaverCount; i += 250) {
    const size = Math.min(250, stayerCount + leaverCount - i)
    const wave = await Promise.all(
      Array.from({ length: size }, (_, k) => read(`${server.url}/?topic=${topicOf(i + k)}`)),
    )
    for (const [k, reader] of wave.entries()) (i + k < stayerCount ? stayers : leavers).push(reader)
  }
  stuck.push(
    ...(await Promise.all(
      Array.from({ length: stuckCount }, () => stalledClient(port, '/?topic=heavy')),
    )),
  )
  const total = stayerCount + leaverCount + stuckCount
  await waitFor(`${total} subscribers`, () => hub.subscribers(), {
    until: (n) => n === total,
    timeout: 60_000,
  })

  // Publish rounds; leavers go at random rounds; Redis dies twice and comes back.
  const accepted = new Map<string, string[]>()
  let refused = 0
  // Publishes that got no answer in commandTimeout: Redis may still have run them, and the
  // broker says so ("may not have been published"). Such an event reaches every subscriber of
  // its topic or none; none was seen on a quiet machine.
  const uncertain = new Set<string>()
  const leaveAt = leavers.map((_, i) => 1 + ((i * 7919) % (rounds - 1)))
  const started = performance.now()
  for (let round = 0; round < rounds; round++) {
    if (outages.includes(round)) {
      // Redis answers a publish before it writes the message to the subscribers' connections,
      // so a kill in between would lose an accepted event for everyone, with nothing persisted
      // (see broker-faults.test.ts). The claim here is what reaches stayers through an outage:
      // the kill comes once the rounds before it have reached them.
      await waitFor(
        `every stayer to have rounds 0–${round - 1} before the kill`,
        () =>
          stayers.filter((s, i) => s.data.length < (accepted.get(topicOf(i))?.length ?? 0)).length,
        { until: (behind) => behind === 0, timeout: 60_000 },
      )
      await redis.stop()
    }
    if (outages.some((at) => round === at + outageRounds)) {
      await redis.start()
      // Publishing resumes once the broker is back: refusals in between are expected.
      await waitFor(
        'the broker to accept a publish again',
        async () => {
          try {
            const data = `probe ${round}`
            await hub.publish('probe', data)
            return true
          } catch {
            return false
          }
        },
        { timeout: 30_000, interval: 50 },
      )
    }
    for (const [i, leaver] of leavers.entries()) if (leaveAt[i] === round) leaver.destroy()
    await Promise.all(
      Array.from({ length: TOPICS }, async (_, t) => {
        const data = `r${round} t${t}`
        try {
          await hub.publish(`t${t}`, `${data}|`)
          const list = accepted.get(`t${t}`) ?? []
          list.push(data)
          accepted.set(`t${t}`, list)
        } catch (error) {
          if (/may not have been published/.test((error as Error).message)) uncertain.add(data)
          else refused++
        }
      }),
    )
    // Let the deliveries of this round go out before the next one.
    await new Promise((resolve) => setImmediate(resolve))
  }
  const publishMs = performance.now() - started

  // The stuck readers: big events until every one of them overflowed its queue and was dropped.
  const big = `heavy|${'x'.repeat(HEAVY_SIZE)}`
  for (let i = 0; i < HEAVY_EVENTS && hub.stats().disconnected < stuckCount; i++) {
    await hub.publish('heavy', big)
    await new Promise((resolve) => setImmediate(resolve))
  }
  await waitFor(`all ${stuckCount} stuck readers dropped`, () => hub.stats().disconnected, {
    until: (n) => n === stuckCount,
    timeout: 60_000,
  })

  // Every stayer gets every accepted event of its topic, in order, once.
  await waitFor(
    'every stayer to have every accepted event',
    () => stayers.filter((s, i) => s.data.length < accepted.get(topicOf(i))!.length).length,
    { until: (behind) => behind === 0, timeout: 60_000 },
  )
  const seenOnTopic = new Map<string, string[]>()
  for (const [i, stayer] of stayers.entries()) {
    const topic = topicOf(i)
    expect(stayer.data.filter((data) => !uncertain.has(data))).toEqual(accepted.get(topic))
    // Uncertain ones included, every stayer of a topic received the same events, in order.
    const first = seenOnTopic.get(topic) ?? stayer.data
    seenOnTopic.set(topic, first)
    expect(stayer.data).toEqual(first)
  }

  // The rest end: closeAll for the stayers (and any stuck stream not dropped yet).
  await registry.closeAll()
  for (const socket of stuck) socket.destroy()
  const ends = await Promise.all(stayers.map((s) => s.ended))
  expect(ends.every((how) => how === 'end')).toBe(true)
  await waitFor(`onClose for all ${total} streams`, () => [...closes.values()], {
    until: (all) => all.length === total && all.every((reasons) => reasons.length > 0),
    timeout: 30_000,
  })

  // Every onClose exactly once, with the reason the client's fate implies.
  const reasons = [...closes.values()]
  expect(reasons.every((r) => r.length === 1)).toBe(true)
  const count = (reason: CloseReason) => reasons.filter((r) => r[0] === reason).length
  expect(count('shutdown')).toBe(stayerCount)
  expect(count('disconnect')).toBe(leaverCount)
  expect(count('timeout')).toBe(stuckCount)

  // The counters match what the clients saw.
  const stats = hub.stats()
  const acceptedCount = [...accepted.values()].reduce((sum, list) => sum + list.length, 0)
  const probes = stats.published - acceptedCount
  expect(probes).toBeGreaterThanOrEqual(outages.length)
  expect(stats.disconnected).toBe(stuckCount)
  expect(stats.subscribers).toBe(0)
  expect(otherErrors).toEqual([])

  expect(refused).toBeGreaterThan(0)

  // The metrics (oven-sse/otel) tell the same story.
  expect(await metric(reader, 'oven_sse.streams.closed', 'reason=shutdown')).toBe(stayerCount)
  expect(await metric(reader, 'oven_sse.streams.closed', 'reason=disconnect')).toBe(leaverCount)
  expect(await metric(reader, 'oven_sse.streams.closed', 'reason=timeout')).toBe(stuckCount)
  expect(await metric(reader, 'oven_sse.drops', 'reason=overflow-disconnect')).toBe(stuckCount)
  expect(await metric(reader, 'oven_sse.streams.open')).toBe(0)
  const interruptions = await metric(reader, 'oven_sse.broker.interruptions')
  expect(interruptions).toBeGreaterThanOrEqual(outages.length)
  expect(await metric(reader, 'oven_sse.broker.resyncs')).toBe(interruptions)
  const received = stayers.reduce((sum, stayer) => sum + stayer.data.length, 0)
  expect(await metric(reader, 'oven_sse.events.sent')).toBeGreaterThanOrEqual(received)
  instrumentation.close()
  await provider.shutdown()

  await hub.close()
  await server.close()
  return {
    streams: total,
    accepted: acceptedCount,
    refused,
    uncertain: uncertain.size,
    publishMs: Math.round(publishMs),
    closes: {
      shutdown: count('shutdown'),
      disconnect: count('disconnect'),
      timeout: count('timeout'),
    },
    brokerErrors: brokerErrors.length,
  }
}
