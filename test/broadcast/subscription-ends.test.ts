/**
 * A subscription given the stream's `ctx` ends with its stream without making `ctx.signal`
 * (an AbortSignal and its listener are most of an idle subscriber's memory): it listens to the
 * context itself. These check that it still ends exactly when the signal would have aborted,
 * over real sockets, in every shape a route takes it.
 */

import { afterEach, expect, test } from 'vitest'
import { type CloseReason, defaultRegistry, type StreamContext } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { closeHubs, newHub } from '../helpers/hubs.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { follow } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'

afterEach(async () => {
  await closeHubs()
  await closeAllServers()
})

/** Counts reads of `ctx.signal` (still returning the real one). */
function countSignalReads(ctx: StreamContext<unknown>): { reads: number } {
  const counter = { reads: 0 }
  const real = Object.getOwnPropertyDescriptor(ctx, 'signal')!
  Object.defineProperty(ctx, 'signal', {
    ...real,
    get() {
      counter.reads++
      return real.get!.call(ctx)
    },
  })
  return counter
}

test('passed as content, it never reads ctx.signal, and a client that leaves ends it', async () => {
  const hub = newHub()
  const counters: Array<{ reads: number }> = []
  const closed: Promise<CloseReason>[] = []
  const server = await nodeServer((req, res) => {
    closed.push(
      sendEventStream(req, res, (ctx) => {
        counters.push(countSignalReads(ctx))
        return hub.subscribe('news', ctx)
      }),
    )
  })
  const client = follow(`${server.url}/`)
  await waitFor('one subscriber', () => hub.subscribers('news'), { until: (n) => n === 1 })
  await hub.publish('news', 'hello')
  await client.until('the event', (events) => events.some((e) => e.data === 'hello'))
  await client.stop()
  expect(await closed[0]).toBe('disconnect')
  await waitFor('no subscriber', () => hub.subscribers('news'), { until: (n) => n === 0 })
  expect(counters[0]!.reads).toBe(0)
})

test('read inside a generator, it ends when the client leaves, and the generator finishes', async () => {
  const hub = newHub()
  const finished: string[] = []
  const server = await nodeServer((req, res) => {
    void sendEventStream(req, res, async function* (ctx) {
      try {
        // The generator waits inside `for await` on an idle topic: only the stream's end can
        // wake it (its return() queues behind the pending read).
        for await (const event of hub.subscribe(['a', 'b'], ctx)) yield event
        finished.push('loop ended')
      } finally {
        finished.push('finally')
      }
    })
  })
  const client = follow(`${server.url}/`)
  await waitFor('subscribed to both topics', () => hub.subscribers(), { until: (n) => n === 1 })
  await hub.publish('a', 'one')
  await client.until('the event', (events) => events.some((e) => e.data === 'one'))
  await client.stop()
  await waitFor('the generator to finish', () => finished, {
    until: (seen) => seen.includes('finally'),
  })
  expect(finished).toEqual(['loop ended', 'finally'])
  expect(hub.subscribers()).toBe(0)
})

test('several subscriptions on one context all end with the stream; one closed early is let go', async () => {
  const hub = newHub()
  const ended: string[] = []
  const server = await nodeServer((req, res) => {
    void sendEventStream(req, res, async function* (ctx) {
      // Closed before the stream ends: it must not be told again, nor kept.
      const early = hub.subscribe('early', ctx)
      early.close()
      const first = hub.subscribe('one', ctx)
      const second = hub.subscribe('two', ctx)
      try {
        for await (const event of first) {
          yield event
          break
        }
        // Now waits on `second`, with `first` still open: the end must close both.
        for await (const event of second) yield event
      } finally {
        ended.push(`first ${first.closed}`, `second ${second.closed}`, `early ${early.closed}`)
      }
    })
  })
  const client = follow(`${server.url}/`)
  await waitFor('two subscribers', () => hub.subscribers(), { until: (n) => n === 2 })
  await hub.publish('one', 'x')
  await client.until('the event', (events) => events.some((e) => e.data === 'x'))
  await client.stop()
  await waitFor('the generator to finish', () => ended.length > 0)
  expect(ended).toEqual(['first true', 'second true', 'early true'])
  await waitFor('no subscriber', () => hub.subscribers(), { until: (n) => n === 0 })
})

test('shutdown ends it when the stream stops wanting items, as ctx.signal would', async () => {
  const hub = newHub()
  const closed: Promise<CloseReason>[] = []
  const server = await nodeServer((req, res) => {
    closed.push(sendEventStream(req, res, (ctx) => hub.subscribe('news', ctx)))
  })
  const client = follow(`${server.url}/`)
  await waitFor('one subscriber', () => hub.subscribers('news'), { until: (n) => n === 1 })
  // A long grace: the stream ends at once only because the subscription ends when shutdown
  // begins (the source is then done), not when the grace is over.
  const closing = defaultRegistry.closeAll({ grace: 60_000 })
  let reason: CloseReason | undefined
  void closed[0]!.then((value) => {
    reason = value
  })
  await waitFor('the stream to end at once', () => reason, { until: (r) => r === 'shutdown' })
  await closing
  await client.ended()
  expect(hub.subscribers()).toBe(0)
})

test('a subscription made after its stream ended is closed at once', async () => {
  const hub = newHub()
  const made: Array<{ closed: boolean; ready: Promise<void> }> = []
  let release!: () => void
  const held = new Promise<void>((resolve) => {
    release = resolve
  })
  const closed: Promise<CloseReason>[] = []
  const server = await nodeServer((req, res) => {
    closed.push(
      sendEventStream(req, res, async (ctx) => {
        await held
        const subscription = hub.subscribe('late', ctx)
        made.push(subscription)
        return subscription
      }),
    )
  })
  const client = follow(`${server.url}/`)
  await waitFor('the request to arrive', () => closed.length === 1)
  await client.stop().catch(() => {})
  expect(await closed[0]).toBe('disconnect')
  release()
  await waitFor('the late subscription', () => made.length === 1)
  expect(made[0]!.closed).toBe(true)
  await made[0]!.ready
  expect(hub.subscribers()).toBe(0)
})
