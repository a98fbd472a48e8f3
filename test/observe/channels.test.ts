/**
 * Oven's lifecycle events on `node:diagnostics_channel`, over real sockets: what a subscriber
 * receives for each documented channel, and that the numbers match what the client saw.
 */

import { execFileSync } from 'node:child_process'
import { get, type IncomingMessage } from 'node:http'
import { fileURLToPath } from 'node:url'
import { afterEach, expect, test } from 'vitest'
import { utf8Length, utf8LengthOf } from '../../src/diagnostics/channels.ts'
import {
  Broadcaster,
  type BrokerSink,
  ConnectionLimiter,
  MemoryBroker,
  type StreamInfo,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { readEvents, shortDurations } from '../../src/testing.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { stalledClient } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'
import { recordChannels } from './recorder.ts'

const stops: Array<() => unknown> = []
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop()
  await closeAllServers()
})

function record(...args: Parameters<typeof recordChannels>) {
  const recorder = recordChannels(...args)
  stops.push(() => recorder.stop())
  return recorder
}

test('open, one event message per item, writes that add up to the bytes received, close with a duration', async () => {
  const recorder = record()
  const server = await nodeServer((req, res) => {
    sendEventStream(req, res, ['a', { event: 'x', data: 'ü€😀' }, 'c'], { ping: false })
  })
  const response = await fetch(server.url)
  const received = new Uint8Array(await response.arrayBuffer())
  await waitFor('the close message', () => recorder.of('streamClose').length, {
    until: (n) => n === 1,
  })

  const [open] = recorder.of('streamOpen')
  const stream = open!.stream as StreamInfo<IncomingMessage>
  expect(stream.request.url).toBe('/')
  expect(typeof stream.openedAt).toBe('number')
  const events = recorder.of('streamEvent')
  expect(events.map((m) => m.item)).toEqual(['a', { event: 'x', data: 'ü€😀' }, 'c'])
  expect(events.every((m) => m.stream === stream && m.publishedAt === undefined)).toBe(true)
  const written = recorder.of('streamWrite')
  expect(written.every((m) => m.stream === stream)).toBe(true)
  expect(written.reduce((sum, m) => sum + (m.bytes as number), 0)).toBe(received.byteLength)
  const [close] = recorder.of('streamClose')
  expect(close).toMatchObject({ stream, reason: 'done', opened: true })
  expect(close!.durationMs).toBeGreaterThanOrEqual(0)
  expect(recorder.of('streamError')).toEqual([])
})

test('a client that leaves: close with reason disconnect', async () => {
  const recorder = record(['streamOpen', 'streamClose'])
  const server = await nodeServer((req, res) => {
    sendEventStream(req, res, async function* ({ signal }) {
      yield 'hello'
      await new Promise((resolve) => signal.addEventListener('abort', resolve))
    })
  })
  const controller = new AbortController()
  await readEvents(server.url, { count: 1, signal: controller.signal }).catch(() => [])
  await waitFor('the open message', () => recorder.of('streamOpen').length === 1)
  controller.abort()
  const [close] = await waitFor('the close message', () => recorder.of('streamClose'), {
    until: (list) => list.length === 1,
  })
  expect(close).toMatchObject({ reason: 'disconnect', opened: true })
})

test('a source that throws: the error message carries the error, then close with reason error', async () => {
  const recorder = record(['streamError', 'streamClose'])
  const boom = new Error('boom')
  const reported: unknown[] = []
  const server = await nodeServer((req, res) => {
    sendEventStream(
      req,
      res,
      async function* () {
        yield 'one'
        throw boom
      },
      { onError: (error) => reported.push(error) },
    )
  })
  await (await fetch(server.url)).text()
  await waitFor('the close message', () => recorder.of('streamClose').length === 1)
  expect(recorder.of('streamError')).toMatchObject([{ error: boom }])
  expect(recorder.of('streamClose')).toMatchObject([{ reason: 'error', opened: true }])
  expect(reported).toEqual([boom])
})

test('a client that stops reading: send-timeout, then close with reason timeout', async () => {
  const recorder = record(['sendTimeout', 'streamClose'])
  const server = await nodeServer((req, res) => {
    sendEventStream(
      req,
      res,
      function* () {
        for (;;) yield 'x'.repeat(4096)
      },
      shortDurations({ sendTimeout: 300, ping: false as const }),
    )
  })
  const socket = await stalledClient(server.port)
  stops.push(() => socket.destroy())
  await waitFor('the close message', () => recorder.of('streamClose').length === 1)
  expect(recorder.of('sendTimeout')).toMatchObject([{ sendTimeout: 300 }])
  expect(recorder.of('streamClose')).toMatchObject([{ reason: 'timeout', opened: true }])
  expect(recorder.of('sendTimeout')[0]!.stream).toBe(recorder.of('streamClose')[0]!.stream)
})

test('a connection limit turning a stream away: which limit, which key; the stream closes unopened', async () => {
  const recorder = record(['limitReject', 'streamClose', 'streamOpen'])
  const limit = new ConnectionLimiter<IncomingMessage>({
    max: 2,
    maxPerKey: 1,
    key: (req) => String(req.headers['x-user']),
  })
  const server = await nodeServer((req, res) => {
    sendEventStream(
      req,
      res,
      async function* ({ signal }) {
        yield 'hi'
        await new Promise((resolve) => signal.addEventListener('abort', resolve))
      },
      { limit },
    )
  })
  const open = (user: string) =>
    new Promise<void>((resolve, reject) => {
      const request = get(server.url, { headers: { 'x-user': user } }, (res) => {
        res.once('data', () => resolve())
      }).on('error', () => {})
      request.once('error', reject)
      stops.push(() => request.destroy())
    })
  await open('ann')
  expect(await statusOf(server.url, 'ann')).toBe(503)
  await open('bob')
  expect(await statusOf(server.url, 'cyd')).toBe(503)
  expect(recorder.of('limitReject').map(({ limit, key }) => ({ limit, key }))).toEqual([
    { limit: 'maxPerKey', key: 'ann' },
    { limit: 'max', key: undefined },
  ])
  const rejected = recorder.of('streamClose').filter((m) => m.reason === 'rejected')
  expect(rejected).toMatchObject([{ opened: false }, { opened: false }])
  expect(recorder.of('streamOpen')).toHaveLength(2)
})

function statusOf(url: string, user: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { headers: { 'x-user': user } }, (res) => {
      res.resume()
      resolve(res.statusCode!)
    }).on('error', reject)
  })
}

test('overflow: drop-oldest reports each dropped event, disconnect the dropped subscriber', async () => {
  const recorder = record(['overflow'])
  for (const overflow of ['drop-oldest', 'disconnect'] as const) {
    const hub = new Broadcaster({ queue: 2, overflow })
    stops.push(() => hub.close())
    const subscription = hub.subscribe(['t1', 't2'])
    await subscription.ready
    for (let i = 0; i < 4; i++) await hub.publish('t1', `e${i}`)
  }
  expect(recorder.of('overflow')).toEqual([
    { policy: 'drop-oldest', topics: ['t1', 't2'] },
    { policy: 'drop-oldest', topics: ['t1', 't2'] },
    { policy: 'disconnect', topics: ['t1', 't2'] },
  ])
})

/** The in-memory broker, with a handle on its sink so a test can interrupt live delivery. */
class InterruptibleBroker extends MemoryBroker {
  sink: BrokerSink | undefined
  override attach(sink: BrokerSink): void {
    this.sink = sink
    super.attach(sink)
  }
}

test('broker state: made live, interrupted, catching up, live again, closed', async () => {
  const recorder = record(['brokerState'])
  const broker = new InterruptibleBroker()
  const hub = new Broadcaster({ broker })
  broker.sink!.interrupted()
  broker.sink!.resync()
  await waitFor('the feed to be live again', () => recorder.of('brokerState').length === 4)
  await hub.close()
  expect(recorder.of('brokerState').every((m) => m.broadcaster === hub)).toBe(true)
  expect(recorder.of('brokerState').map(({ state, previous }) => [previous, state])).toEqual([
    [undefined, 'live'],
    ['live', 'interrupted'],
    ['interrupted', 'catching-up'],
    ['catching-up', 'live'],
    ['live', 'closed'],
  ])
})

test('a broadcast event carries its publish time to each subscriber stream', async () => {
  const recorder = record(['streamEvent', 'streamOpen', 'streamClose'])
  const hub = new Broadcaster()
  stops.push(() => hub.close())
  const server = await nodeServer((req, res) => {
    sendEventStream(req, res, (ctx) => hub.subscribe('news', ctx))
  })
  const clients = [0, 1].map(() => readEvents(server.url, { count: 3 }))
  await waitFor('two subscribers', () => hub.subscribers('news') === 2)
  const before = performance.now()
  for (let i = 0; i < 3; i++) await hub.publish('news', `n${i}`)
  const received = await Promise.all(clients)
  expect(received.map((events) => events.map((e) => e.data))).toEqual([
    ['n0', 'n1', 'n2'],
    ['n0', 'n1', 'n2'],
  ])
  const events = recorder.of('streamEvent')
  expect(events).toHaveLength(6)
  for (const { publishedAt, stream } of events) {
    expect(publishedAt).toBeGreaterThanOrEqual(before)
    expect(publishedAt).toBeGreaterThanOrEqual((stream as StreamInfo).openedAt!)
  }
})

test('a stream opened before anyone listened: its close has no duration', async () => {
  let recorder: ReturnType<typeof record> | undefined
  const server = await nodeServer((req, res) => {
    sendEventStream(req, res, async function* () {
      yield 'first'
      recorder = record(['streamClose'])
      yield 'second'
    })
  })
  await (await fetch(server.url)).text()
  await waitFor('the close message', () => recorder?.of('streamClose').length === 1)
  const [close] = recorder!.of('streamClose')
  expect(close).toMatchObject({ reason: 'done', opened: true, durationMs: undefined })
  expect((close!.stream as StreamInfo).openedAt).toBeUndefined()
})

test('without process.getBuiltinModule (a runtime with no node: modules) the core loads and streams, channels inert', () => {
  const index = fileURLToPath(new URL('../../src/index.ts', import.meta.url))
  const script = `
    delete process.getBuiltinModule
    const oven = await import(${JSON.stringify(index)})
    const response = new oven.EventSourceResponse(['a', 'b'], { ping: false })
    const text = await response.text()
    console.log(JSON.stringify({ available: oven.diagnosticsAvailable, text }))
  `
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script],
    { encoding: 'utf8', timeout: 20_000 },
  )
  expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({
    available: false,
    text: ': ok\r\n\r\ndata: a\r\n\r\ndata: b\r\n\r\n',
  })
})

test('write sizes: the native and the JavaScript UTF-8 lengths agree, lone surrogates included', () => {
  const samples = ['', 'ascii', 'é', '€', '😀', 'a\uD800b', '\uDC00', 'x\uD83D', 'ü€😀'.repeat(100)]
  for (const text of samples) {
    const expected = new TextEncoder().encode(text).byteLength
    expect([utf8Length(text), utf8LengthOf(text)]).toEqual([expected, expected])
  }
})
