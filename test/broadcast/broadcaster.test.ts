import { EventSource } from 'eventsource'
import { afterEach, describe, expect, test } from 'vitest'
import {
  Broadcaster,
  EventSourceResponse,
  MemoryBroker,
  RESET_EVENT,
  ServerSentEvent,
} from '../../src/index.ts'
import { iterateEvents, readEvents, type SseEvent } from '../../src/testing.ts'
import { closeAllServers, sleep, webServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'
import { hubServer, takeHubServerErrors } from './hub-server.ts'

const hubs: Broadcaster[] = []
function makeHub(options?: ConstructorParameters<typeof Broadcaster>[0]): Broadcaster {
  const hub = new Broadcaster(options)
  hubs.push(hub)
  return hub
}

afterEach(async () => {
  await Promise.all(hubs.splice(0).map((hub) => hub.close()))
  await closeAllServers()
  expect(takeHubServerErrors()).toEqual([])
})

const ID = /^[0-9a-z]{10}-\d+$/

describe('publish and subscribe', () => {
  test('every subscriber receives each event, with the id publish returned', async () => {
    const hub = makeHub()
    const server = await hubServer(hub)
    const reads = [1, 2, 3].map(() => readEvents(server.stream('news'), { count: 3 }))
    await server.live(3)
    const ids = [
      await hub.publish('news', 'one'),
      await hub.publish('news', { event: 'update', data: { n: 2 } }),
      await hub.publish('news', new ServerSentEvent({ data: 'three', comment: 'c' })),
    ]
    await hub.publish('other', 'not for them')
    for (const id of ids) expect(id).toMatch(ID)
    const expected: SseEvent[] = [
      { id: ids[0]!, event: undefined, data: 'one' },
      { id: ids[1]!, event: 'update', data: '{"n":2}' },
      { id: ids[2]!, event: undefined, data: 'three' },
    ]
    for (const events of await Promise.all(reads)) expect(events).toEqual(expected)
    expect(hub.stats()).toMatchObject({ published: 4, delivered: 9 })
  })

  test('one stream covers several topics, in publish order', async () => {
    const hub = makeHub()
    const server = await hubServer(hub)
    const read = readEvents(server.stream('a', 'b'), { count: 4 })
    await server.live(1)
    await hub.publish('a', 'a1')
    await hub.publish('c', 'c1')
    await hub.publish('b', 'b1')
    await hub.publish('a', 'a2')
    await hub.publish('b', 'b2')
    expect((await read).map((event) => event.data)).toEqual(['a1', 'b1', 'a2', 'b2'])
  })

  test('every subscriber gets the very same ServerSentEvent instance (encoded once)', async () => {
    const hub = makeHub()
    const first = hub.subscribe('t')
    const second = hub.subscribe(['t', 'u'])
    await Promise.all([first.ready, second.ready])
    await hub.publish('t', 'shared')
    const a = await first[Symbol.asyncIterator]().next()
    const b = await second[Symbol.asyncIterator]().next()
    expect(a.value).toBeInstanceOf(ServerSentEvent)
    expect(a.value).toBe(b.value)
  })

  test('works as EventSourceResponse content with the stream context', async () => {
    const hub = makeHub()
    const subscriptions: Array<{ ready: Promise<void> }> = []
    const server = await webServer(
      (request) =>
        new EventSourceResponse(
          (ctx) => {
            const subscription = hub.subscribe('web', ctx)
            subscriptions.push(subscription)
            return subscription
          },
          { request },
        ),
    )
    const read = readEvents(server.url, { count: 2 })
    await waitFor('the request subscribed', () => subscriptions.length, { until: (n) => n === 1 })
    await subscriptions[0]!.ready
    await hub.publish('web', 'x')
    const last = await hub.publish('web', 'y')
    const events = await read
    expect(events.map((event) => event.data)).toEqual(['x', 'y'])
    // Resume through the web transport's Last-Event-ID handling.
    await hub.publish('web', 'z')
    const resumed = await readEvents(server.url, { count: 1, lastEventId: last })
    expect(resumed.map((event) => event.data)).toEqual(['z'])
  })

  test('a filter decides per subscriber', async () => {
    const hub = makeHub()
    const evens = hub.subscribe('n', { filter: (event) => Number(event.data) % 2 === 0 })
    await evens.ready
    for (let i = 1; i <= 6; i++) await hub.publish('n', String(i))
    const response = new EventSourceResponse(evens)
    const events = await readEvents(response, { count: 3 })
    expect(events.map((event) => event.data)).toEqual(['2', '4', '6'])
  })
})

describe('resume from Last-Event-ID', () => {
  test('a reconnecting client receives exactly what it missed, then live events', async () => {
    const hub = makeHub()
    const server = await hubServer(hub)
    const first = readEvents(server.stream('chat'), { count: 3 })
    await server.live(1)
    for (let i = 1; i <= 3; i++) await hub.publish('chat', `m${i}`)
    const seen = await first
    await waitFor('first client gone', () => hub.subscribers('chat'), { until: (n) => n === 0 })
    for (let i = 4; i <= 7; i++) await hub.publish('chat', `m${i}`)
    const resumed = iterateEvents(server.stream('chat'), { lastEventId: seen[2]!.id })
    const got: string[] = []
    for await (const event of resumed) {
      got.push(event.data)
      if (got.length === 4) await hub.publish('chat', 'm8')
      if (got.length === 5) break
    }
    expect(got).toEqual(['m4', 'm5', 'm6', 'm7', 'm8'])
  })

  test('no gap and no duplicate while events are published during the hand-over', async () => {
    const hub = makeHub()
    const server = await hubServer(hub)
    const total = 400
    const received: number[] = []
    let lastId: string | undefined
    // A client that keeps disconnecting and resuming on a two-topic stream. Each round ends on
    // its count, never on a timer: it asks only for events that will be published.
    const round = () =>
      readEvents(server.stream('x', 'y'), {
        count: Math.min(total - received.length, 10),
        timeout: 15_000,
        ...(lastId === undefined ? {} : { lastEventId: lastId }),
      })
    // The first round is live before anything is published, so every event must arrive.
    const first = round()
    await server.live(1)
    let published = 0
    const publisher = (async () => {
      while (published < total) {
        await hub.publish(published % 2 ? 'x' : 'y', String(published++))
        // Let the rounds hand over while publishing goes on.
        if (published % 2 === 0) await sleep(1)
      }
    })()
    for (let index = 0; index < 80 && received.length < total; index++) {
      for (const event of await (index === 0 ? first : round())) {
        expect(event.event).not.toBe(RESET_EVENT)
        received.push(Number(event.data))
        lastId = event.id
      }
    }
    await publisher
    // Every event arrived once, in order, across 40 reconnections.
    expect(received).toEqual(Array.from({ length: total }, (_, i) => i))
  })

  test('an id older than the history gets the reset event, then live events', async () => {
    const hub = makeHub({ history: 5 })
    const old = await hub.publish('t', 'old')
    for (let i = 0; i < 10; i++) await hub.publish('t', `e${i}`)
    const subscription = hub.subscribe('t', { lastEventId: old })
    await subscription.ready
    const next = await hub.publish('t', 'live')
    const events = await readEvents(new EventSourceResponse(subscription), { count: 2 })
    expect(events[0]!.event).toBe(RESET_EVENT)
    expect(JSON.parse(events[0]!.data)).toEqual({ reason: 'expired', topics: ['t'] })
    expect(events[1]).toEqual({ id: next, event: undefined, data: 'live' })
    expect(hub.stats().resets).toBe(1)
  })

  test('the id just before the oldest kept event still resumes', async () => {
    const hub = makeHub({ history: 3 })
    await hub.publish('t', 'a')
    const b = await hub.publish('t', 'b')
    for (const data of ['c', 'd', 'e']) await hub.publish('t', data)
    const events = await readEvents(
      new EventSourceResponse(hub.subscribe('t', { lastEventId: b })),
      {
        count: 3,
      },
    )
    expect(events.map((event) => event.data)).toEqual(['c', 'd', 'e'])
  })

  test('an id from another history (another epoch) is reported as lost', async () => {
    const before = makeHub()
    const id = await before.publish('t', 'from a server that restarted')
    const hub = makeHub()
    await hub.publish('t', 'new life')
    const events = await readEvents(
      new EventSourceResponse(hub.subscribe('t', { lastEventId: id })),
      {
        count: 1,
      },
    )
    expect(events[0]!.event).toBe(RESET_EVENT)
    expect(JSON.parse(events[0]!.data).reason).toBe('lost')
    // The reset carries the current position: resuming from it loses nothing.
    const after = await hub.publish('t', 'next')
    const resumed = await readEvents(
      new EventSourceResponse(hub.subscribe('t', { lastEventId: events[0]!.id })),
      { count: 1 },
    )
    expect(resumed[0]).toEqual({ id: after, event: undefined, data: 'next' })
  })

  test('malformed, huge and future ids are refused with a reset, never a crash', async () => {
    const hub = makeHub()
    const server = await hubServer(hub)
    const id = await hub.publish('t', 'x')
    const epoch = id.split('-')[0]!
    const bad = [
      'garbage',
      'a-b-c',
      `${epoch}-01`,
      `${epoch}-99999`,
      'x'.repeat(8000),
      `${epoch}-1e3`,
    ]
    for (const lastEventId of bad) {
      const events = await readEvents(server.stream('t'), { count: 1, lastEventId })
      expect(events[0]!.event).toBe(RESET_EVENT)
      expect(JSON.parse(events[0]!.data).reason).toBe('invalid')
    }
    // Still serving normally.
    const events = await readEvents(server.stream('t'), { count: 1, lastEventId: `${epoch}-0` })
    expect(events[0]!.data).toBe('x')
  })

  test('a real EventSource reconnects by itself and resumes', async () => {
    const hub = makeHub()
    const server = await hubServer(hub)
    const source = new EventSource(server.stream('live'))
    const got: string[] = []
    source.onmessage = (event) => got.push(event.data)
    try {
      await server.live(1)
      await hub.publish('live', '1')
      await hub.publish('live', '2')
      await waitFor('two events received', () => got.length, { until: (n) => n === 2 })
      // The server drops the stream; events are published before the client is back.
      server.subscriptions[0]!.close()
      await hub.publish('live', '3')
      await hub.publish('live', '4')
      await server.live(2)
      await hub.publish('live', '5')
      await waitFor('five events received', () => got.length, { until: (n) => n === 5 })
      expect(got).toEqual(['1', '2', '3', '4', '5'])
    } finally {
      source.close()
    }
  })
})

describe('lifecycle, presence and errors', () => {
  test('presence counts subscribers per topic and drops them on disconnect', async () => {
    const hub = makeHub()
    const server = await hubServer(hub)
    const controller = new AbortController()
    const reads = [
      readEvents(server.stream('a'), { signal: controller.signal, timeout: 10_000 }),
      readEvents(server.stream('a', 'b'), { signal: controller.signal, timeout: 10_000 }),
    ]
    await server.live(2)
    expect(hub.subscribers('a')).toBe(2)
    expect(hub.subscribers('b')).toBe(1)
    expect(hub.subscribers()).toBe(2)
    expect(hub.stats()).toMatchObject({ subscribers: 2, topics: 2 })
    controller.abort()
    await Promise.all(reads)
    await waitFor('subscribers gone', () => hub.subscribers(), { until: (n) => n === 0 })
    expect(hub.stats()).toMatchObject({ subscribers: 0, topics: 0 })
  })

  test('the signal ends a subscription and return() frees it', async () => {
    const hub = makeHub()
    const controller = new AbortController()
    const subscription = hub.subscribe('t', { signal: controller.signal })
    await subscription.ready
    const iterator = subscription[Symbol.asyncIterator]()
    const pending = iterator.next()
    controller.abort()
    expect(await pending).toEqual({ done: true, value: undefined })
    expect(hub.subscribers('t')).toBe(0)
    const other = hub.subscribe('t')
    await other.ready
    await hub.publish('t', 'queued')
    expect(other.size).toBe(1)
    await other[Symbol.asyncIterator]().return!()
    expect(other.size).toBe(0)
    expect(hub.subscribers()).toBe(0)
  })

  test('close() ends streams; later publish rejects and subscribe throws', async () => {
    const hub = makeHub()
    const server = await hubServer(hub)
    const read = readEvents(server.stream('t'))
    await server.live(1)
    await hub.publish('t', 'last words')
    await hub.close()
    expect((await read).map((event) => event.data)).toEqual(['last words'])
    await expect(hub.publish('t', 'x')).rejects.toMatchObject({ code: 'ERR_SSE_BROKER' })
    expect(() => hub.subscribe('t')).toThrow(/closed/)
  })

  test('bad items, topics and options are refused where they are written', async () => {
    const hub = makeHub()
    await expect(hub.publish('t', { data: 'x', id: '7' } as never)).rejects.toThrow(/assigns ids/)
    await expect(hub.publish('t', { event: 'a\nb' })).rejects.toMatchObject({
      code: 'ERR_SSE_INVALID_FIELD',
    })
    await expect(hub.publish('t', new Uint8Array(1) as never)).rejects.toMatchObject({
      code: 'ERR_SSE_INVALID_EVENT',
    })
    await expect(hub.publish('', 'x')).rejects.toThrow(/non-empty string/)
    expect(() => hub.subscribe([])).toThrow(/non-empty array/)
    expect(() => hub.subscribe('t', { lastEventid: 'x' } as never)).toThrow(
      /Unknown option "lastEventid" for subscribe\(\)/,
    )
    expect(() => new Broadcaster({ overflow: 'block' as never })).toThrow(/overflow/)
    expect(() => new Broadcaster({ queue: 0 })).toThrow(/queue/)
    expect(() => new Broadcaster({ broker: {} as never })).toThrow(/broker/)
    expect(() => new Broadcaster({ histroy: 5 } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION' }),
    )
  })

  test('a MemoryBroker can be passed in and is closed with the hub', async () => {
    const broker = new MemoryBroker()
    const hub = makeHub({ broker, history: 0 })
    const id = await hub.publish('t', 'x')
    await hub.publish('t', 'y')
    const events = await readEvents(
      new EventSourceResponse(hub.subscribe('t', { lastEventId: id })),
      {
        count: 1,
      },
    )
    // history: 0 keeps nothing, so any resume is a reset.
    expect(JSON.parse(events[0]!.data).reason).toBe('expired')
    await hub.close()
    await expect(broker.publish('t', '{}', 1)).rejects.toMatchObject({ code: 'ERR_SSE_BROKER' })
  })
})
