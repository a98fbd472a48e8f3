/**
 * tRPC v11 subscriptions over Server-Sent Events, fed by a Broadcaster: the recipe of
 * docs/trpc.md as examples/trpc/router.ts has it, on tRPC's standalone adapter over a real
 * port, read by the real `@trpc/client` `httpSubscriptionLink` with the `eventsource`
 * package's `EventSource`. Connections are cut from the server side (its sockets destroyed, or
 * the whole server replaced by another instance on the same port), and the client must come
 * back by itself and receive every event exactly once.
 *
 * `eventsource` waits 3 s before it reconnects (tRPC sends no `retry:` field), so each test
 * that cuts a connection takes at least that long.
 */

import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { createTRPCClient, httpSubscriptionLink, type TRPCClientError } from '@trpc/client'
import { createHTTPHandler } from '@trpc/server/adapters/standalone'
import { EventSource } from 'eventsource'
import { afterEach, expect, test } from 'vitest'
import {
  type AppRouter,
  createAppRouter,
  createContext,
  type RoomEvent,
  roomTopic,
} from '../../examples/trpc/router.ts'
import { Broadcaster, parseEventId } from '../../src/index.ts'
import { RedisBroker } from '../../src/redis.ts'
import { reservePort, startRedis } from '../helpers/redis.ts'
import { Teardown } from '../helpers/teardown.ts'
import { waitFor, within } from '../helpers/wait.ts'

const teardown = new Teardown()
afterEach(() => teardown.run())

const ROOM = 'lobby'
const TOPIC = roomTopic(ROOM)

/** A Broadcaster closed on teardown. */
function hub(options: ConstructorParameters<typeof Broadcaster>[0] = {}): Broadcaster {
  const created = new Broadcaster(options)
  teardown.push(() => created.close())
  return created
}

/** One subscription request as the server saw it. */
interface SubscriptionRequest {
  /** The `Last-Event-ID` header (what `EventSource` sends when it reconnects by itself). */
  header: string | undefined
  /** `lastEventId` in the input of the URL (what the link puts there when it opens one). */
  input: string | undefined
  /** The response status, once the response has finished or closed. */
  status?: number
}

/** A tRPC server on the example's router, on `port` (default: a free one). */
async function trpcServer(broadcaster: Broadcaster, port = 0) {
  const logged: string[] = []
  const requests: SubscriptionRequest[] = []
  const sockets = new Set<Socket>()
  const handler = createHTTPHandler({
    router: createAppRouter({ hub: broadcaster, log: (line) => logged.push(line) }),
    createContext,
  })
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/onMessage')) {
      const request = record(req)
      requests.push(request)
      res.once('close', () => {
        request.status = res.statusCode
      })
    }
    handler(req, res)
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  teardown.push(close)
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    logged,
    requests,
    /** Cuts every connection, as a network failure or a proxy would. */
    cut: () => {
      for (const socket of sockets) socket.destroy()
    },
    close,
  }
}

function record(req: IncomingMessage): SubscriptionRequest {
  const url = new URL(req.url ?? '/', 'http://x')
  const input = JSON.parse(url.searchParams.get('input') ?? '{}') as { lastEventId?: string }
  const header = req.headers['last-event-id']
  return { header: typeof header === 'string' ? header : undefined, input: input.lastEventId }
}

/** A tRPC client following the room, recording what it receives. */
function follow(url: string, options: { token?: string; lastEventId?: string } = {}) {
  const client = createTRPCClient<AppRouter>({
    links: [
      httpSubscriptionLink({
        url,
        EventSource,
        connectionParams: { token: options.token ?? 'ada-token' },
      }),
    ],
  })
  const received: Array<{ id: string; data: RoomEvent }> = []
  const errors: TRPCClientError<AppRouter>[] = []
  const states: string[] = []
  let completed = false
  const subscription = client.onMessage.subscribe(
    {
      room: ROOM,
      ...(options.lastEventId === undefined ? {} : { lastEventId: options.lastEventId }),
    },
    {
      onData: (event) => received.push(event),
      onError: (error) => errors.push(error),
      onComplete: () => {
        completed = true
      },
      onConnectionStateChange: (state) =>
        states.push(state.error ? `${state.state}: ${state.error.data?.code}` : state.state),
    },
  )
  teardown.push(async () => subscription.unsubscribe())
  return {
    received,
    errors,
    states,
    completed: () => completed,
    unsubscribe: () => subscription.unsubscribe(),
    /** The ids received so far. */
    ids: () => received.map((event) => event.id),
  }
}

type Follower = ReturnType<typeof follow>

/** Publishes chat messages `from`..`to` (texts `m<from>`..) in order; resolves with their ids. */
async function publish(broadcaster: Broadcaster, from: number, to: number): Promise<string[]> {
  const ids: string[] = []
  for (let n = from; n <= to; n++) {
    ids.push(
      await broadcaster.publish(TOPIC, { event: 'message', data: { user: 'ada', text: `m${n}` } }),
    )
  }
  return ids
}

/** The events `publish(…, from, to)` made, as the client receives them. */
const messages = (ids: string[], from: number) =>
  ids.map((id, i) => ({
    id,
    data: { type: 'message', message: { user: 'ada', text: `m${from + i}` } },
  }))

const receivedCount = (client: Follower, count: number, what: string) =>
  waitFor(what, () => client.received.length, { until: (n) => n >= count, timeout: 15_000 })

const subscribers = (broadcaster: Broadcaster, count: number, what: string) =>
  waitFor(what, () => broadcaster.subscribers(TOPIC), { until: (n) => n === count })

/**
 * A starting point for a client: the id of a first message (`m0`). A subscription without
 * `lastEventId` starts at the broker's head as its setup reads it, some time after the
 * Broadcaster counts it as a subscriber (and after the client's `onStarted`); with Redis, an
 * event published in between is before its start. From an id, nothing published after the id
 * can be missed.
 */
const start = async (broadcaster: Broadcaster) => (await publish(broadcaster, 0, 0))[0]!

test('events arrive in order, each tracked by its Broadcaster id', async () => {
  const broadcaster = hub()
  const server = await trpcServer(broadcaster)
  const client = follow(server.url, { lastEventId: await start(broadcaster) })
  const ids = await publish(broadcaster, 1, 50)
  await receivedCount(client, 50, '50 events')
  expect(client.received).toEqual(messages(ids, 1))
  expect(client.errors).toEqual([])
})

test('a cut connection resumes after the last id: what was published meanwhile arrives, each event once', async () => {
  const broadcaster = hub()
  const server = await trpcServer(broadcaster)
  const first = await start(broadcaster)
  const client = follow(server.url, { lastEventId: first })
  const before = await publish(broadcaster, 1, 5)
  await receivedCount(client, 5, '5 events before the cut')

  server.cut()
  // The server saw the client go: the procedure's loop ended and the subscription left.
  await subscribers(broadcaster, 0, 'the subscription ended with the connection')
  await waitFor('the procedure finished', () => server.logged.length === 1)
  const meanwhile = await publish(broadcaster, 6, 8)

  await subscribers(broadcaster, 1, 'the client reconnected')
  const after = await publish(broadcaster, 9, 10)
  await receivedCount(client, 10, '10 events in all')
  expect(client.received).toEqual(messages([...before, ...meanwhile, ...after], 1))

  // EventSource reconnected by itself, to the same URL, sending the last id it had as the
  // Last-Event-ID header, which tRPC puts in the input in place of the URL's.
  expect(server.requests.map(({ header, input }) => ({ header, input }))).toEqual([
    { header: undefined, input: first },
    { header: before[4], input: first },
  ])
  expect(client.errors).toEqual([])
  expect(client.completed()).toBe(false)
})

test('an id the history no longer covers gives a reset as data, tracked by the current position', async () => {
  const broadcaster = hub({ history: 3 })
  const server = await trpcServer(broadcaster)
  const ids = await publish(broadcaster, 1, 10)

  // Still in the history: a plain resume from the id given in the input.
  const recent = follow(server.url, { lastEventId: ids[7]! })
  await receivedCount(recent, 2, 'the 2 events after the 8th')
  expect(recent.received).toEqual(messages(ids.slice(8), 9))

  // Pushed out of the history, or not an id of ours: a reset, then live events. The reset is
  // the first thing a subscription sends, once it is set up: after it, nothing is missed.
  const old = follow(server.url, { lastEventId: ids[0]! })
  const invalid = follow(server.url, { lastEventId: 'not-an-oven-id' })
  await receivedCount(old, 1, 'the expired reset')
  await receivedCount(invalid, 1, 'the invalid reset')
  const [live] = await publish(broadcaster, 11, 11)
  for (const [client, reason] of [
    [old, 'expired'],
    [invalid, 'invalid'],
  ] as const) {
    await receivedCount(client, 2, `the ${reason} reset and a live event`)
    expect(client.received).toEqual([
      { id: ids[9], data: { type: 'reset', reason, topics: [TOPIC] } },
      ...messages([live!], 11),
    ])
  }

  // The reset's id moved the client on: cut after a reset alone, it resumes from there.
  const alone = follow(server.url, { lastEventId: 'not-an-oven-id' })
  await receivedCount(alone, 1, 'the reset')
  expect(alone.received[0]).toEqual({
    id: live,
    data: { type: 'reset', reason: 'invalid', topics: [TOPIC] },
  })
  server.cut()
  await subscribers(broadcaster, 0, 'every subscription ended with its connection')
  const meanwhile = await publish(broadcaster, 12, 12)
  await receivedCount(alone, 2, 'the event published while cut')
  expect(alone.received.slice(1)).toEqual(messages(meanwhile, 12))
  expect(server.requests.at(-1)?.header).toBe(live)
  for (const client of [recent, old, invalid, alone]) expect(client.errors).toEqual([])
})

test('unsubscribing ends the procedure: its finally runs and the subscription leaves at once', async () => {
  const broadcaster = hub()
  const server = await trpcServer(broadcaster)
  const client = follow(server.url, { lastEventId: await start(broadcaster) })
  await publish(broadcaster, 1, 1)
  await receivedCount(client, 1, 'the first event')

  const unsubscribedAt = performance.now()
  client.unsubscribe()
  // The procedure waits for the next event when the client leaves; tRPC's signal ends the
  // subscription, which ends the wait (without it, return() would wait for an event).
  await within(
    waitFor('the procedure finished', () => server.logged.length === 1, { interval: 1 }),
    1000,
    'the finally after unsubscribe',
  )
  const elapsed = performance.now() - unsubscribedAt
  expect(server.logged).toEqual([`ada's subscription to ${ROOM} ended`])
  expect(broadcaster.subscribers()).toBe(0)
  expect(broadcaster.stats().subscribers).toBe(0)
  console.info(`[trpc] finally ran ${elapsed.toFixed(1)} ms after unsubscribe()`)
})

test("an UNAUTHORIZED thrown in the procedure reaches the client's onError as tRPC's error", async () => {
  const broadcaster = hub()
  const server = await trpcServer(broadcaster)
  const client = follow(server.url, { token: 'wrong' })
  await waitFor('onError', () => client.errors.length === 1)
  const [error] = client.errors
  expect(error?.message).toBe('Sign in to join the chat.')
  expect(error?.data?.code).toBe('UNAUTHORIZED')
  expect(client.received).toEqual([])
  expect(broadcaster.subscribers()).toBe(0)
  // tRPC answers a subscription with a 200 event stream and sends the error as an event in it
  // (`serialized-error`); the link gives up on this code instead of reconnecting.
  await waitFor('the response closed', () => server.requests[0]?.status)
  expect(server.requests).toEqual([{ header: undefined, input: undefined, status: 200 }])
})

test('with Redis: an instance shuts down, another takes its port, and the client resumes there without loss', async () => {
  const redis = await startRedis()
  teardown.push(() => redis.close())
  const { port, release } = await reservePort()
  teardown.push(release)
  const first = hub({ broker: new RedisBroker({ url: redis.url, prefix: 'trpc' }) })
  const second = hub({ broker: new RedisBroker({ url: redis.url, prefix: 'trpc' }) })

  const serverA = await trpcServer(first, port)
  const client = follow(serverA.url, { lastEventId: await start(first) })
  const before = await publish(first, 1, 3)
  await receivedCount(client, 3, '3 events from A')

  // A's shutdown: the Broadcaster closes, so the procedure's subscription ends with the client
  // still there. It throws the retryable SERVICE_UNAVAILABLE: the client keeps the
  // subscription and reconnects instead of taking the end for a completed subscription.
  await first.close()
  await waitFor('the client told to reconnect', () =>
    client.states.includes('connecting: SERVICE_UNAVAILABLE'),
  )
  await serverA.close()

  // Published on B while no instance serves the client, then B takes the port.
  const meanwhile = await publish(second, 4, 5)
  const serverB = await trpcServer(second, port)
  await subscribers(second, 1, 'the client reconnected to instance B')
  const after = await publish(second, 6, 7)
  await receivedCount(client, 7, '7 events in all')
  expect(client.received).toEqual(messages([...before, ...meanwhile, ...after], 1))
  expect(serverB.requests.map((request) => request.header)).toEqual([before[2]])
  // One history, one sequence: B's ids continue A's.
  expect(new Set(client.ids().map((id) => parseEventId(id)?.epoch)).size).toBe(1)
  expect(client.errors).toEqual([])
  expect(client.completed()).toBe(false)
})
