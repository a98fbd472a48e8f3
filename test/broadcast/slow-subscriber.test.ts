import { get, type IncomingMessage } from 'node:http'
import { afterEach, expect, test } from 'vitest'
import {
  Broadcaster,
  type CloseReason,
  EventSourceResponse,
  type Subscription,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { iterateEvents, readEvents, type SseEvent } from '../../src/testing.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'
import { hubServer, takeHubServerErrors } from './hub-server.ts'

const hubs: Broadcaster[] = []
afterEach(async () => {
  await Promise.all(hubs.splice(0).map((hub) => hub.close()))
  await closeAllServers()
  expect(takeHubServerErrors()).toEqual([])
})

const QUEUE = 16
const TOTAL = 600
const payload = 'x'.repeat(256)

/**
 * A client that reads the first event, then stops reading: the stream's body is a pull-based
 * ReadableStream, so once it stops pulling the pump stops taking events from the subscription.
 */
async function stalledClient(subscription: Subscription) {
  const response = new EventSourceResponse(subscription, { ping: false })
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let text = decoder.decode((await reader.read()).value, { stream: true })
  return {
    /**
     * Reads until the stream ends (or `marker` arrives); returns the text. A stream dropped on
     * overflow ends with the drop's error, which is expected only with `dropped`.
     */
    async drain(marker?: string, { dropped = false } = {}): Promise<string> {
      for (let reads = 0; reads < 10_000; reads++) {
        if (marker !== undefined && text.includes(marker)) break
        let result: ReadableStreamReadResult<Uint8Array>
        try {
          result = await reader.read()
        } catch (error) {
          // Dropped ('disconnect' overflow): what arrived is all there is.
          if (!dropped) throw error
          expect(String(error)).toMatch(/dropped without a clean end/)
          return text + decoder.decode()
        }
        if (result.done) return text + decoder.decode()
        text += decoder.decode(result.value, { stream: true })
      }
      await reader.cancel()
      return text
    },
  }
}

function parse(text: string): Array<{ id: string; data: string }> {
  const out: Array<{ id: string; data: string }> = []
  // Only blocks ended by the blank line were dispatched: the last piece is empty, or an event
  // cut off mid-write when the connection was dropped, which a client never sees.
  for (const block of text.split('\r\n\r\n').slice(0, -1)) {
    const id = /^id: (.*)$/m.exec(block)?.[1]
    const data = /^data: (.*)$/m.exec(block)?.[1]
    if (id !== undefined && data !== undefined) out.push({ id, data: data.split(' ')[0]! })
  }
  return out
}

test("'drop-oldest': a stalled subscriber holds at most `queue` events and never delays others", async () => {
  const hub = new Broadcaster({ queue: QUEUE, overflow: 'drop-oldest', history: TOTAL })
  hubs.push(hub)
  const server = await hubServer(hub)
  const slowSubscription = hub.subscribe('feed')
  await slowSubscription.ready
  await hub.publish('feed', 'first')
  const slow = await stalledClient(slowSubscription)
  // Two fast clients over real sockets, reading everything.
  const fast = [1, 2].map(() =>
    readEvents(server.stream('feed'), { count: TOTAL, timeout: 15_000 }),
  )
  await server.live(2)
  let maxQueued = 0
  for (let i = 0; i < TOTAL; i++) {
    await hub.publish('feed', `${i} ${payload}`)
    maxQueued = Math.max(maxQueued, slowSubscription.size)
    // Let the sockets move, as a real server would between requests.
    if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  for (const events of await Promise.all(fast)) {
    expect(events.map((event) => Number(event.data.split(' ')[0]))).toEqual(
      Array.from({ length: TOTAL }, (_, i) => i),
    )
  }
  expect(maxQueued).toBeLessThanOrEqual(QUEUE)
  expect(slowSubscription.size).toBeLessThanOrEqual(QUEUE)
  const { dropped, disconnected } = hub.stats()
  expect(dropped).toBeGreaterThanOrEqual(TOTAL - QUEUE - 2)
  expect(disconnected).toBe(0)
  // Still connected: it gets the newest events when it reads again, the last one included.
  const received = parse(await slow.drain(`data: ${TOTAL - 1} `))
  expect(received.at(-1)?.data).toBe(String(TOTAL - 1))
  expect(received.length).toBeLessThanOrEqual(QUEUE + 3)
})

test("'disconnect': a stalled subscriber is cut off, its queue freed, and it resumes without loss", async () => {
  const hub = new Broadcaster({ queue: QUEUE, overflow: 'disconnect', history: TOTAL })
  hubs.push(hub)
  const server = await hubServer(hub)
  const slowSubscription = hub.subscribe('feed')
  await slowSubscription.ready
  const firstId = await hub.publish('feed', 'first')
  const slow = await stalledClient(slowSubscription)
  const fast = readEvents(server.stream('feed'), { count: TOTAL, timeout: 15_000 })
  await server.live(1)
  let maxQueued = 0
  for (let i = 0; i < TOTAL; i++) {
    await hub.publish('feed', `${i} ${payload}`)
    maxQueued = Math.max(maxQueued, slowSubscription.size)
    if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  expect((await fast).map((event) => Number(event.data.split(' ')[0]))).toEqual(
    Array.from({ length: TOTAL }, (_, i) => i),
  )
  expect(maxQueued).toBeLessThanOrEqual(QUEUE)
  expect(slowSubscription.closed).toBe(true)
  expect(slowSubscription.size).toBe(0)
  expect(hub.stats()).toMatchObject({ disconnected: 1, dropped: 0 })
  expect(hub.subscribers('feed')).toBe(1)
  // The slow client reads what reached it, finds the stream dropped, and resumes from its last id.
  const before = parse(await slow.drain(undefined, { dropped: true }))
  const lastId = before.at(-1)?.id ?? firstId
  const resumed: SseEvent[] = []
  for await (const event of iterateEvents(server.stream('feed'), { lastEventId: lastId })) {
    resumed.push(event)
    if (event.data.startsWith(`${TOTAL - 1} `)) break
  }
  const numbers = [...before, ...resumed]
    .map((event) => event.data.split(' ')[0]!)
    .filter((data) => data !== 'first')
    .map(Number)
  expect(numbers).toEqual(Array.from({ length: TOTAL }, (_, i) => i))
})

test("'disconnect' over a real socket: a client that stops reading is cut off at once and resumes without loss", async () => {
  const hub = new Broadcaster({ queue: 8, overflow: 'disconnect', history: 5000 })
  hubs.push(hub)
  const subscriptions: Subscription[] = []
  const reasons: CloseReason[] = []
  const errors: unknown[] = []
  const server = await nodeServer((req, res) => {
    void sendEventStream(
      req,
      res,
      (ctx) => {
        const subscription = hub.subscribe('feed', ctx)
        subscriptions.push(subscription)
        return subscription
      },
      // No sendTimeout: the overflow alone must drop the stalled client, at once.
      { onError: (error) => errors.push(error), onClose: (reason) => reasons.push(reason) },
    )
  })
  // A client that reads nothing: its socket buffers fill, then the server's writes block.
  let text = ''
  const ended = new Promise<void>((resolve) => {
    const request = get(`${server.url}/`, (response) => {
      response.pause()
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        text += chunk
      })
      response.on('close', () => resolve())
      response.on('error', () => resolve())
      stalled = response
    })
    request.on('error', () => resolve())
  })
  let stalled: IncomingMessage | undefined
  await waitFor('the request subscribed', () => subscriptions.length, { until: (n) => n === 1 })
  await subscriptions[0]!.ready
  // The resume point if nothing reaches the client before it is dropped (a paused response can
  // be torn down with its buffered data): an event published before any numbered one.
  const baseId = await hub.publish('feed', 'base')
  const big = 'y'.repeat(2048)
  let sent = 0
  for (; sent < 10_000 && hub.stats().disconnected === 0; sent++) {
    await hub.publish('feed', `${sent} ${big}`)
    if (sent % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 1))
  }
  expect(hub.stats().disconnected).toBe(1)
  expect(subscriptions[0]!.closed).toBe(true)
  expect(subscriptions[0]!.size).toBe(0)
  expect(hub.subscribers('feed')).toBe(0)
  // The stream ended with the overflow, though its socket is still stalled.
  await waitFor('stream dropped on overflow', () => reasons.length, { until: (n) => n === 1 })
  expect(reasons).toEqual(['timeout'])
  expect(errors).toEqual([])
  // Some more events while it is away.
  for (let i = 0; i < 20; i++) await hub.publish('feed', `${sent++} ${big}`)
  // The client reads again: what reached it, then the end of the dropped connection.
  stalled?.resume()
  await ended
  const before = parse(text).filter((event) => event.data !== 'base')
  expect(before.length).toBeLessThan(sent)
  const resumed = await readEvents(`${server.url}/`, {
    count: sent - before.length,
    timeout: 10_000,
    lastEventId: before.at(-1)?.id ?? baseId,
  })
  const numbers = [
    ...before.map((event) => event.data),
    ...resumed.map((e) => e.data.split(' ')[0]!),
  ]
  expect(numbers.map(Number)).toEqual(Array.from({ length: sent }, (_, i) => i))
})
