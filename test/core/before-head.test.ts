/**
 * What happens to a stream before its head is sent, when a user callback fails or the server
 * shuts down meanwhile:
 *
 * - A failing callback (the content function, a `ConnectionLimiter` key) fails that one
 *   request through the framework's error path, and never the process: a caller that ignores
 *   the promise gets a `500` and an `onError` report, not an unhandled rejection.
 * - `closeAll` reaches a stream whose content function is still running: its signal aborts,
 *   the client gets a complete (empty) stream, and `server.close()` finishes.
 */

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import express, { type NextFunction, type Request, type Response } from 'express'
import Fastify from 'fastify'
import { afterEach, beforeEach, expect, test } from 'vitest'
import { ovenSse } from '../../src/fastify.ts'
import {
  type CloseReason,
  ConnectionLimiter,
  openEventSourceResponse,
  StreamRegistry,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { readEvents, shortDurations } from '../../src/testing.ts'
import { closeAllServers, nodeServer, webServer } from '../helpers/servers.ts'
import { farewellAfter, gate, sleepUnlessAborted } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'

// Unhandled rejections are captured per test and fail that test (in its afterEach, which vitest
// reports under the test's name): one stray rejection fails the test it happened in, not every
// later one. Between tests, vitest's own handler reports them.
let unhandled: unknown[] = []
const onUnhandled = (error: unknown) => unhandled.push(error)
beforeEach(() => {
  unhandled = []
  process.on('unhandledRejection', onUnhandled)
})
afterEach(async () => {
  try {
    // Still listening while the test's servers close: what their streams do then is this test's.
    await closeAllServers()
  } finally {
    process.off('unhandledRejection', onUnhandled)
  }
  expect(unhandled, 'unhandled rejections in this test').toEqual([])
})

const needsForwardedFor = new ConnectionLimiter<{ headers: Record<string, unknown> }>({
  maxPerKey: 2,
  key: (req) => {
    const forwarded = req.headers['x-forwarded-for']
    if (typeof forwarded !== 'string') throw new Error('no X-Forwarded-For header')
    return forwarded
  },
})

async function* ticks() {
  yield { data: 'tick' }
}

test('node:http: a limiter key that throws answers 500 and reports it; the process and the next request go on', async () => {
  const errors: unknown[] = []
  const reasons: CloseReason[] = []
  const server = await nodeServer((req, res) => {
    // The promise is ignored, as in the README's plain node:http example.
    void sendEventStream(req, res, ticks, {
      limit: needsForwardedFor,
      onError: (error) => errors.push(error),
      onClose: (reason) => reasons.push(reason),
    })
  })
  const failed = await fetch(server.url)
  expect(failed.status).toBe(500)
  expect(await failed.text()).toBe('Internal Server Error\n')
  expect(errors).toEqual([expect.objectContaining({ message: 'no X-Forwarded-For header' })])
  expect(reasons).toEqual(['error'])
  expect(needsForwardedFor.size).toBe(0)
  // The same server still streams for a request that has the header.
  const events = await readEvents(server.url, {
    headers: { 'X-Forwarded-For': '203.0.113.9' },
    count: 1,
  })
  expect(events.map((event) => event.data)).toEqual(['tick'])
})

test('node:http: a limiter key that returns a non-string answers 500 with a clear report', async () => {
  const errors: Error[] = []
  const limit = new ConnectionLimiter({ key: () => 42 as never })
  const server = await nodeServer((req, res) => {
    void sendEventStream(req, res, ticks, {
      limit,
      onError: (error) => errors.push(error as Error),
    })
  })
  expect((await fetch(server.url)).status).toBe(500)
  expect(errors[0]?.message).toMatch(
    /key\(request\) must return a string or undefined, received number 42/,
  )
})

test('node:http: a content function that throws, promise ignored: 500 and a report, no crash', async () => {
  const errors: unknown[] = []
  const server = await nodeServer((req, res) => {
    void sendEventStream(
      req,
      res,
      async () => {
        throw new Error('lookup failed')
      },
      { onError: (error) => errors.push(error) },
    )
  })
  const response = await fetch(server.url)
  expect(response.status).toBe(500)
  expect(errors).toEqual([expect.objectContaining({ message: 'lookup failed' })])
})

test("Express: a limiter key that throws reaches Express's error handler, which answers", async () => {
  const app = express()
  app.get('/events', (req, res) => sendEventStream(req, res, ticks, { limit: needsForwardedFor }))
  app.use((error: Error, _req: Request, res: Response, _next: NextFunction) => {
    res.status(400).send(`refused: ${error.message}`)
  })
  const server = createServer(app).listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  try {
    const { port } = server.address() as AddressInfo
    const response = await fetch(`http://127.0.0.1:${port}/events`)
    expect(response.status).toBe(400)
    expect(await response.text()).toBe('refused: no X-Forwarded-For header')
  } finally {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
})

test('web path: a limiter key that throws makes the handler throw: the server answers 500', async () => {
  const reasons: CloseReason[] = []
  const server = await webServer(async (request) => {
    try {
      return await openEventSourceResponse(async () => ticks(), {
        request,
        limit: needsForwardedFor as never,
        onClose: (reason) => reasons.push(reason),
      })
    } catch (error) {
      return new Response(`refused: ${(error as Error).message}`, { status: 400 })
    }
  })
  const response = await fetch(server.url)
  expect(response.status).toBe(400)
  expect(await response.text()).toBe('refused: no X-Forwarded-For header')
  expect(reasons).toEqual(['error'])
})

test('closeAll reaches a stream whose content function is still running: signal aborted, clean end, server.close() finishes', async () => {
  const registry = new StreamRegistry()
  const entered = gate()
  const signals: AbortSignal[] = []
  const reasons: CloseReason[] = []
  const server = await nodeServer((req, res) => {
    void sendEventStream(
      req,
      res,
      async ({ signal }) => {
        signals.push(signal)
        entered.open()
        // A slow query that honours the signal.
        await sleepUnlessAborted(60_000, signal)
        return ticks()
      },
      { registry, onClose: (reason) => reasons.push(reason) },
    )
  })
  const response = fetch(server.url)
  await entered.promise
  expect(registry.size).toBe(1)
  expect(await registry.closeAll()).toBe(1)
  expect(signals[0]?.aborted).toBe(true)
  expect(signals[0]?.reason).toBe('shutdown')
  expect(reasons).toEqual(['shutdown'])
  // The client gets a complete answer: the stream's head, no events, a clean end.
  const answer = await response
  expect(answer.status).toBe(200)
  expect(answer.headers.get('content-type')).toMatch(/^text\/event-stream/)
  expect(await answer.text()).toBe('')
  // Nothing keeps the server open: close() resolves without closeAllConnections().
  await new Promise<void>((resolve, reject) =>
    server.server.close((error) => (error ? reject(error) : resolve())),
  )
})

test('a stream that arrives while closing is refused before its content function runs', async () => {
  const registry = new StreamRegistry()
  const farewell = gate()
  let ran = false
  const reasons: CloseReason[] = []
  const server = await nodeServer((req, res) => {
    if (req.url === '/hold') {
      // Its farewell waits for the test, so closeAll keeps running meanwhile.
      void sendEventStream(
        req,
        res,
        farewellAfter(farewell.promise),
        shortDurations({ registry, shutdownGrace: 60_000 }),
      )
      return
    }
    void sendEventStream(
      req,
      res,
      () => {
        ran = true
        return ticks()
      },
      { registry, onClose: (reason) => reasons.push(reason) },
    )
  })
  const held = await fetch(`${server.url}/hold`)
  const reader = held.body!.getReader()
  let text = ''
  while (!text.includes('data: first')) {
    const { value, done } = await reader.read()
    if (done) throw new Error(`the holding stream ended early: ${JSON.stringify(text)}`)
    text += new TextDecoder().decode(value)
  }
  const closing = registry.closeAll()
  const answer = await fetch(server.url)
  expect(answer.status).toBe(200)
  expect(await answer.text()).toBe('')
  expect(ran).toBe(false)
  expect(reasons).toEqual(['shutdown'])
  farewell.open()
  expect(await closing).toBe(1)
  await reader.cancel()
})

test('web path: closeAll reaches openEventSourceResponse while its content function runs', async () => {
  const registry = new StreamRegistry()
  const entered = gate()
  const reasons: CloseReason[] = []
  const server = await webServer((request) =>
    openEventSourceResponse(
      async ({ signal }) => {
        entered.open()
        await sleepUnlessAborted(60_000, signal)
        return ticks()
      },
      { request, registry, onClose: (reason) => reasons.push(reason) },
    ),
  )
  const response = fetch(server.url)
  await entered.promise
  expect(await registry.closeAll()).toBe(1)
  const answer = await response
  expect(answer.status).toBe(200)
  expect(await answer.text()).toBe('')
  expect(reasons).toEqual(['shutdown'])
  await waitFor('the registry to empty', () => registry.size, { until: (size) => size === 0 })
})

test('Fastify: app.close() while a content function runs: the client gets an empty stream, not the close reason', async () => {
  const app = Fastify()
  await app.register(ovenSse)
  const entered = gate()
  app.get('/events', (_request, reply) =>
    reply.sse(async ({ signal }) => {
      entered.open()
      await sleepUnlessAborted(60_000, signal)
      return ticks()
    }),
  )
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const response = fetch(`http://127.0.0.1:${port}/events`)
  await entered.promise
  const closing = app.close()
  const answer = await response
  expect(answer.status).toBe(200)
  expect(answer.headers.get('content-type')).toMatch(/^text\/event-stream/)
  expect(await answer.text()).toBe('')
  await closing
})

test('Fastify: a limiter key that throws reaches Fastify’s error handler, even one that answers asynchronously', async () => {
  const app = Fastify()
  await app.register(ovenSse)
  app.setErrorHandler(async (error, _request, reply) => {
    // An error handler that awaits something before it answers (a log call, say).
    await new Promise((resolve) => setTimeout(resolve, 50))
    return reply.status(400).send(`refused: ${(error as Error).message}`)
  })
  app.get('/events', (_request, reply) =>
    reply.sse(async () => ticks(), { limit: needsForwardedFor as never }),
  )
  await app.listen({ port: 0, host: '127.0.0.1' })
  try {
    const { port } = app.server.address() as AddressInfo
    const answer = await fetch(`http://127.0.0.1:${port}/events`)
    expect(answer.status).toBe(400)
    expect(await answer.text()).toBe('refused: no X-Forwarded-For header')
  } finally {
    await app.close()
  }
})
