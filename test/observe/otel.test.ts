/**
 * `oven-sse/otel` with a real OpenTelemetry SDK meter (sdk-metrics 2.x, which runs on Node 20),
 * reading real streams over real sockets: the metrics match what the clients saw.
 */

import { get, type IncomingMessage } from 'node:http'
import {
  type Histogram,
  MeterProvider,
  MetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics'
import { afterEach, expect, test } from 'vitest'
import { Broadcaster, type BrokerSink, ConnectionLimiter, MemoryBroker } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { instrumentOven } from '../../src/otel.ts'
import { shortDurations } from '../../src/testing.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { stalledClient } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'

/** A reader the test collects from when it wants. */
class PullReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve()
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve()
  }
}

const teardown: Array<() => unknown> = []
afterEach(async () => {
  for (const step of teardown.splice(0).reverse()) await step()
  await closeAllServers()
})

function setup() {
  const reader = new PullReader()
  const provider = new MeterProvider({ readers: [reader] })
  const instrumentation = instrumentOven({ meter: provider.getMeter('test') })
  teardown.push(
    () => provider.shutdown(),
    () => instrumentation.close(),
  )
  return { reader, instrumentation }
}

/** Collected points, by metric name then by attributes (`reason=done`, or `` for none). */
async function collect(reader: MetricReader) {
  const { resourceMetrics } = await reader.collect()
  return pointsOf(resourceMetrics)
}

function pointsOf(resourceMetrics: ResourceMetrics) {
  const out = new Map<string, Map<string, number | Histogram>>()
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      const points = new Map<string, number | Histogram>()
      for (const point of metric.dataPoints) {
        const key = Object.entries(point.attributes)
          .map(([name, value]) => `${name}=${String(value)}`)
          .join(',')
        points.set(key, point.value as number | Histogram)
      }
      out.set(metric.descriptor.name, points)
    }
  }
  return {
    /** The value of a counter or gauge point (0 when absent). */
    value(name: string, attributes = ''): number {
      return (out.get(name)?.get(attributes) as number | undefined) ?? 0
    },
    histogram(name: string, attributes = ''): Histogram | undefined {
      return out.get(name)?.get(attributes) as Histogram | undefined
    },
  }
}

/** Reads a stream raw until it has `count` data lines; returns the bytes read, then leaves. */
function readBytes(url: string, count: number) {
  return new Promise<{ bytes: number; data: string[]; leave: () => void }>((resolve, reject) => {
    const request = get(url, (res) => {
      let bytes = 0
      let text = ''
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.byteLength
        text += chunk.toString('utf8')
        const data = [...text.matchAll(/^data: (.*)$/gm)].map((m) => m[1]!)
        if (data.length === count) resolve({ bytes, data, leave: () => request.destroy() })
      })
    })
    request.on('error', () => {})
    request.once('error', reject)
    teardown.push(() => request.destroy())
  })
}

test('broadcast streams: open streams, events and bytes sent, closes and delivery latency match what the clients saw', async () => {
  const { reader } = setup()
  const hub = new Broadcaster()
  teardown.push(() => hub.close())
  const server = await nodeServer((req, res) => {
    sendEventStream(req, res, (ctx) => hub.subscribe('news', ctx), { ping: false })
  })
  const clients = [0, 1, 2].map(() => readBytes(server.url, 5))
  await waitFor('three subscribers', () => hub.subscribers('news') === 3)
  expect((await collect(reader)).value('oven_sse.streams.open')).toBe(3)

  const published = performance.now()
  for (let i = 0; i < 5; i++) await hub.publish('news', `e${'é'.repeat(i)}`)
  const seen = await Promise.all(clients)
  expect(seen.map((client) => client.data)).toEqual(
    Array(3).fill(['e', 'eé', 'eéé', 'eééé', 'eéééé']),
  )
  const elapsed = performance.now() - published
  let points = await collect(reader)
  expect(points.value('oven_sse.events.sent')).toBe(15)
  expect(points.value('oven_sse.bytes.sent')).toBe(seen.reduce((sum, c) => sum + c.bytes, 0))
  const latency = points.histogram('oven_sse.broadcast.delivery.duration')!
  expect(latency.count).toBe(15)
  expect(latency.min).toBeGreaterThanOrEqual(0)
  expect(latency.max).toBeLessThanOrEqual(elapsed)

  for (const client of seen) client.leave()
  points = await waitFor('the three closes', () => collect(reader), {
    until: (p) => p.value('oven_sse.streams.closed', 'reason=disconnect') === 3,
  })
  expect(points.value('oven_sse.streams.open')).toBe(0)
  expect(points.histogram('oven_sse.stream.duration')?.count).toBe(3)
})

test('drops by reason, errors, limit rejections', async () => {
  const { reader } = setup()
  // overflow: a subscriber that never reads, with each policy
  for (const overflow of ['drop-oldest', 'disconnect'] as const) {
    const hub = new Broadcaster({ queue: 2, overflow })
    teardown.push(() => hub.close())
    await hub.subscribe('t').ready
    for (let i = 0; i < 5; i++) await hub.publish('t', String(i))
  }
  // send timeout: a client that stops reading
  const limit = new ConnectionLimiter<IncomingMessage>({ max: 1 })
  const server = await nodeServer((req, res) => {
    if (req.url === '/fail') {
      sendEventStream(
        req,
        res,
        async function* () {
          yield 'one'
          throw new Error('boom')
        },
        { onError: () => {} },
      )
      return
    }
    sendEventStream(
      req,
      res,
      function* () {
        for (;;) yield 'x'.repeat(4096)
      },
      shortDurations({ sendTimeout: 300, ping: false as const, limit }),
    )
  })
  const socket = await stalledClient(server.port)
  teardown.push(() => socket.destroy())
  await waitFor('the stalled stream to take the slot', () => limit.size === 1)
  const rejected = await fetch(server.url)
  expect(rejected.status).toBe(503)
  await rejected.text()
  await (await fetch(`${server.url}/fail`)).text()

  const points = await waitFor('the send timeout', () => collect(reader), {
    until: (p) => p.value('oven_sse.drops', 'reason=send-timeout') === 1,
  })
  expect(points.value('oven_sse.drops', 'reason=overflow-drop-oldest')).toBe(3)
  expect(points.value('oven_sse.drops', 'reason=overflow-disconnect')).toBe(1)
  expect(points.value('oven_sse.limit.rejections', 'limit=max')).toBe(1)
  expect(points.value('oven_sse.streams.closed', 'reason=rejected')).toBe(1)
  expect(points.value('oven_sse.stream.errors')).toBe(1)
  expect(points.value('oven_sse.streams.closed', 'reason=error')).toBe(1)
  expect(points.value('oven_sse.streams.closed', 'reason=timeout')).toBe(1)
  expect(points.value('oven_sse.streams.open')).toBe(0)
})

class InterruptibleBroker extends MemoryBroker {
  sink: BrokerSink | undefined
  override attach(sink: BrokerSink): void {
    this.sink = sink
    super.attach(sink)
  }
}

test('broker state: broadcasters by feed state, interruptions and resyncs', async () => {
  const { reader } = setup()
  const broker = new InterruptibleBroker()
  const hub = new Broadcaster({ broker })
  expect((await collect(reader)).value('oven_sse.broker.feeds', 'state=live')).toBe(1)
  broker.sink!.interrupted()
  let points = await collect(reader)
  expect(points.value('oven_sse.broker.feeds', 'state=live')).toBe(0)
  expect(points.value('oven_sse.broker.feeds', 'state=interrupted')).toBe(1)
  expect(points.value('oven_sse.broker.interruptions')).toBe(1)
  broker.sink!.resync()
  points = await waitFor('the feed to be live again', () => collect(reader), {
    until: (p) => p.value('oven_sse.broker.resyncs') === 1,
  })
  expect(points.value('oven_sse.broker.feeds', 'state=live')).toBe(1)
  expect(points.value('oven_sse.broker.feeds', 'state=interrupted')).toBe(0)
  await hub.close()
  expect((await collect(reader)).value('oven_sse.broker.feeds', 'state=live')).toBe(0)
})

test('close() stops recording', async () => {
  const { reader, instrumentation } = setup()
  const server = await nodeServer((req, res) => {
    sendEventStream(req, res, ['a', 'b'])
  })
  await (await fetch(server.url)).text()
  await waitFor('the first close', () => collect(reader), {
    until: (p) => p.value('oven_sse.streams.closed', 'reason=done') === 1,
  })
  instrumentation.close()
  instrumentation.close() // idempotent
  await (await fetch(server.url)).text()
  const points = await collect(reader)
  expect(points.value('oven_sse.streams.closed', 'reason=done')).toBe(1)
  expect(points.value('oven_sse.events.sent')).toBe(2)
})

test('an unknown option is refused at once, naming it', () => {
  expect(() => instrumentOven({ metre: {} } as never)).toThrow(/metre/)
})
