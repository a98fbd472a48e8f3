/**
 * `maxDuration`: a stream ends itself cleanly after that long, after a `retry` hint, with close
 * reason `maxDuration` — on both transports and in every adapter — and a client reconnecting
 * with `Last-Event-ID` to a Broadcaster subscription receives every event exactly once.
 */

import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { serve } from '@hono/node-server'
import { EventSource } from 'eventsource'
import Fastify from 'fastify'
import { Hono } from 'hono'
import Koa from 'koa'
import { afterEach, expect, test } from 'vitest'
import { ovenSse } from '../../src/fastify.ts'
import { sse as honoSse } from '../../src/hono.ts'
import {
  Broadcaster,
  type CloseReason,
  EventSourceResponse,
  type StreamContext,
} from '../../src/index.ts'
import { sse as koaSse } from '../../src/koa.ts'
import { sendEventStream } from '../../src/node.ts'
import { readMessages, shortDurations } from '../../src/testing.ts'
import { closeAllServers, nodeServer, webServer } from '../helpers/servers.ts'
import { Teardown } from '../helpers/teardown.ts'
import { waitFor } from '../helpers/wait.ts'

const cleanup = new Teardown()
afterEach(async () => {
  try {
    await cleanup.run()
  } finally {
    await closeAllServers()
  }
})

const LIFE = 200

/** An endless source: a tick every 10 ms until the stream stops wanting them. */
async function* ticks({ signal }: StreamContext<unknown>) {
  for (let i = 0; i < 100_000; i++) {
    yield { data: `t${i}` }
    await sleep(10, undefined, { signal })
  }
}

/** What one stream's end looks like, and what its hooks saw. */
interface Outcome {
  reasons: CloseReason[]
  signalReasons: unknown[]
}

function watcher(): Outcome & {
  options: { onClose(reason: CloseReason): void }
  source(ctx: StreamContext<unknown>): AsyncGenerator<{ data: string }>
} {
  const outcome: Outcome = { reasons: [], signalReasons: [] }
  return {
    ...outcome,
    options: { onClose: (reason) => outcome.reasons.push(reason) },
    source(ctx) {
      ctx.signal.addEventListener('abort', () => outcome.signalReasons.push(ctx.signal.reason))
      return ticks(ctx)
    },
    get reasons() {
      return outcome.reasons
    },
    get signalReasons() {
      return outcome.signalReasons
    },
  }
}

/** Reads a stream to its end: some events, then the retry hint, then the end. */
async function expectCleanCut(url: string, outcome: Outcome, retry = 1000) {
  const messages = await readMessages(url, { timeout: 10_000 })
  const events = messages.filter((message) => message.type === 'event')
  expect(events.length).toBeGreaterThan(0)
  expect(messages.at(-1)).toEqual({ type: 'retry', retry })
  await waitFor('onClose ran', () => outcome.reasons.length)
  expect(outcome.reasons).toEqual(['maxDuration'])
  expect(outcome.signalReasons).toEqual(['maxDuration'])
}

test('options: maxDuration is a whole number of ms, at least 1000, 0 for no limit', () => {
  expect(() => new EventSourceResponse([], { maxDuration: 300 })).toThrow(
    /Invalid option "maxDuration": expected a whole number of milliseconds from 1000 to 2147483647, or 0 for no limit \(did you mean 300000 for 300 s\?\), received number 300\. Values below 1000 ms are for tests only/,
  )
  expect(() => new EventSourceResponse([], { maxDuration: 1500.5 })).toThrow(
    /Invalid option "maxDuration"/,
  )
  expect(() => new EventSourceResponse([], { maxDuration: '60000' as never })).toThrow(
    /received string "60000"/,
  )
  expect(() => new EventSourceResponse([], { maxDuration: 0 })).not.toThrow()
  expect(() => new EventSourceResponse([], { maxDuration: 60_000 })).not.toThrow()
  expect(() => new EventSourceResponse([], shortDurations({ maxDuration: 5 }))).not.toThrow()
})

test('node: the stream ends after maxDuration with a retry hint, reason maxDuration', async () => {
  const watch = watcher()
  const server = await nodeServer((req, res) => {
    void sendEventStream(
      req,
      res,
      watch.source,
      shortDurations({ ...watch.options, maxDuration: LIFE }),
    )
  })
  await expectCleanCut(server.url, watch)
})

test('node: the retry option is the hint sent before the cut', async () => {
  const watch = watcher()
  const server = await nodeServer((req, res) => {
    void sendEventStream(
      req,
      res,
      watch.source,
      shortDurations({ ...watch.options, maxDuration: LIFE, retry: 25 }),
    )
  })
  await expectCleanCut(server.url, watch, 25)
})

test('web: EventSourceResponse ends after maxDuration, and closed settles with it', async () => {
  const watch = watcher()
  const closed: Array<Promise<CloseReason>> = []
  const server = await webServer((request) => {
    const response = new EventSourceResponse(
      watch.source,
      shortDurations({ ...watch.options, maxDuration: LIFE, request }),
    )
    closed.push(response.closed)
    return response
  })
  await expectCleanCut(server.url, watch)
  expect(await closed[0]).toBe('maxDuration')
})

/** Listens on a free port and registers the server's closing for teardown. */
async function listening(server: Server): Promise<string> {
  await new Promise<void>((resolve) => {
    if (server.listening) resolve()
    else server.once('listening', resolve)
  })
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

test('fastify: reply.sse passes maxDuration through', async () => {
  const watch = watcher()
  const app = Fastify()
  await app.register(ovenSse)
  app.get('/', (_request, reply) =>
    reply.sse(watch.source, shortDurations({ ...watch.options, maxDuration: LIFE })),
  )
  await app.listen({ port: 0, host: '127.0.0.1' })
  cleanup.push(() => app.close())
  const { port } = app.server.address() as AddressInfo
  await expectCleanCut(`http://127.0.0.1:${port}/`, watch)
})

test('hono: the helper passes maxDuration through', async () => {
  const watch = watcher()
  const app = new Hono()
  app.get('/', (c) =>
    honoSse(c, watch.source, shortDurations({ ...watch.options, maxDuration: LIFE })),
  )
  const url = await listening(serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server)
  await expectCleanCut(url, watch)
})

test('koa: the helper passes maxDuration through', async () => {
  const watch = watcher()
  const app = new Koa()
  app.use((ctx) =>
    koaSse(ctx, watch.source, shortDurations({ ...watch.options, maxDuration: LIFE })),
  )
  const url = await listening(app.listen(0, '127.0.0.1'))
  await expectCleanCut(url, watch)
})

test('a Broadcaster subscriber cut by maxDuration reconnects and gets every event exactly once', async () => {
  const hub = new Broadcaster()
  cleanup.push(() => hub.close())
  let connections = 0
  const server = await nodeServer((req, res) => {
    connections++
    void sendEventStream(
      req,
      res,
      (ctx) => hub.subscribe('feed', ctx),
      shortDurations({ maxDuration: 150, retry: 5 }),
    )
  })
  const received: string[] = []
  const source = new EventSource(server.url)
  cleanup.push(async () => source.close())
  source.addEventListener('message', (event) => received.push(event.data))
  await waitFor('first subscriber live', () => hub.subscribers('feed'))
  // Publish steadily through at least four cuts (bounded: at most 3000 events).
  const published: string[] = []
  for (let i = 0; i < 3000 && (connections < 5 || published.length < 200); i++) {
    const data = `e${i}`
    await hub.publish('feed', data)
    published.push(data)
    if (i % 10 === 9) await sleep(2)
  }
  await waitFor('every published event received', () => received.length, {
    until: (count) => count >= published.length,
  })
  expect(connections).toBeGreaterThanOrEqual(5)
  expect(received).toEqual(published)
})
