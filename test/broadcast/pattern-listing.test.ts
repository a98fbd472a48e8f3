/**
 * A pattern subscription reads the history of the topics a listing named, and a topic first
 * published between that listing and the read is in neither: its message comes live, and the
 * reader must not move past it. The race is made certain here: a broker publishes on a new
 * topic right after each listing, before the history read that follows. Both readers are
 * covered: a subscription that resumes with `Last-Event-ID`, and the broadcaster's catch-up
 * after an interruption. And a listing never leaves out an expired topic silently.
 */

import { afterEach, expect, test } from 'vitest'
import {
  Broadcaster,
  type Broker,
  type BrokerSink,
  type HistoryRead,
  MemoryBroker,
  type Position,
  RESET_EVENT,
  type TopicListing,
  type WildcardBroker,
} from '../../src/index.ts'
import { readEvents, shortDurations } from '../../src/testing.ts'
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

/**
 * A MemoryBroker that runs `afterListing` once, right after its next topic listing, and can go
 * deaf (an interruption: live messages are lost, as on a dropped connection).
 */
class RacingBroker implements Broker, WildcardBroker {
  readonly #inner = new MemoryBroker()
  #sink: BrokerSink | undefined
  #deaf = false
  afterListing: (() => Promise<unknown>) | undefined

  attach(sink: BrokerSink): void {
    this.#sink = sink
    this.#inner.attach({
      message: (message) => {
        if (!this.#deaf) sink.message(message)
      },
      interrupted: () => sink.interrupted(),
      resync: () => sink.resync(),
    })
  }

  /** Live delivery is lost from here until `reconnect()`. */
  interrupt(): void {
    this.#deaf = true
    this.#sink!.interrupted()
  }

  reconnect(): void {
    this.#deaf = false
    this.#sink!.resync()
  }

  async topicsAfter(after: number): Promise<TopicListing> {
    const listing = await this.#inner.topicsAfter(after)
    const then = this.afterListing
    this.afterListing = undefined
    await then?.()
    return listing
  }

  publish(topic: string, payload: string, history: number, ttl?: number): Promise<Position> {
    return this.#inner.publish(topic, payload, history, ttl)
  }
  listen(topic: string): Promise<void> {
    return this.#inner.listen(topic)
  }
  unlisten(topic: string): Promise<void> {
    return this.#inner.unlisten(topic)
  }
  listenAll(): Promise<void> {
    return this.#inner.listenAll()
  }
  unlistenAll(): Promise<void> {
    return this.#inner.unlistenAll()
  }
  read(topics: readonly string[], after: number, limit: number): Promise<HistoryRead> {
    return this.#inner.read(topics, after, limit)
  }
  close(): Promise<void> {
    return this.#inner.close()
  }
}

async function setup() {
  const broker = new RacingBroker()
  const errors: unknown[] = []
  const hub = new Broadcaster({ broker, onError: (error) => errors.push(error) })
  cleanup.push(async () => {
    await hub.close()
    expect(errors).toEqual([])
  })
  return { broker, hub, server: await hubServer(hub) }
}

test('a resume through a pattern: a topic first published right after the listing comes live', async () => {
  const { broker, hub, server } = await setup()
  const seen = await hub.publish('orders/1', 'seen')
  await hub.publish('orders/1', 'missed')
  broker.afterListing = () => hub.publish('orders/late', 'late')
  const resumed = readEvents(server.stream('orders/*'), {
    count: 3,
    lastEventId: seen,
    timeout: 10_000,
  })
  await server.live(1)
  await hub.publish('orders/2', 'live')
  expect((await resumed).map((event) => event.data)).toEqual(['missed', 'late', 'live'])
})

test('a catch-up after an interruption: pattern topics read, and one first published after the listing comes live', async () => {
  const { broker, hub, server } = await setup()
  const stream = readEvents(server.stream('orders/*'), { count: 4, timeout: 10_000 })
  await server.live(1)
  await hub.publish('orders/1', 'e1')
  broker.interrupt()
  // Lost live: only a catch-up that reads the topics the pattern reaches brings it.
  await hub.publish('orders/new', 'missed')
  broker.afterListing = () => hub.publish('orders/late', 'late')
  broker.reconnect()
  await waitFor('the listing was made', () => broker.afterListing === undefined)
  await hub.publish('orders/2', 'live')
  expect((await stream).map((event) => event.data)).toEqual(['e1', 'missed', 'late', 'live'])
})

test('MemoryBroker: a topic expired but not yet swept is forgotten by the listing, so a resume through a pattern is a reset', async () => {
  // The sweep timer runs at most once a second: within that second, the listing is what must
  // not skip an expired topic silently. (If a busy machine lets the timer run first, the sweep
  // raises the watermark instead, and the outcome is the same reset.)
  const hub = new Broadcaster(shortDurations({ broker: new MemoryBroker(), historyTtl: 100 }))
  cleanup.push(() => hub.close())
  const server = await hubServer(hub)
  const seen = await hub.publish('orders/1', 'seen')
  await hub.publish('orders/x', 'lost')
  const deadline = Date.now() + 200
  await waitFor('both expired', () => Date.now(), { until: (now) => now > deadline })
  const [reset] = await readEvents(server.stream('orders/*'), {
    count: 1,
    lastEventId: seen,
    timeout: 10_000,
  })
  expect(reset!.event).toBe(RESET_EVENT)
  expect(JSON.parse(reset!.data)).toEqual({ reason: 'expired', topics: ['orders/*'] })
})
