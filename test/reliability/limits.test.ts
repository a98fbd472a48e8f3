/**
 * Connection limits: a global and a per-key cap; past it a 503 with Retry-After, the source
 * never started, and the slot freed exactly once whatever way the stream ends.
 */

import type { IncomingMessage } from 'node:http'
import { setTimeout as delay } from 'node:timers/promises'
import { EventSource } from 'eventsource'
import { afterEach, describe, expect, test } from 'vitest'
import {
  type CloseReason,
  ConnectionLimiter,
  createChannel,
  EventSourceResponse,
  isSseError,
  StreamRegistry,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { shortDurations } from '../../src/testing.ts'
import { closeAllServers, nodeServer, webServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'
import { fetchText, type OpenStream, openStream, stuckClient, unlessAborted } from './support.ts'

afterEach(closeAllServers)

/** An endless source that records how many times it was started. */
function endless(started: { count: number }) {
  return async function* ({ signal }: { signal: AbortSignal }) {
    started.count++
    for (let i = 0; !signal.aborted; i++) {
      yield { data: String(i) }
      await delay(50, undefined, { signal }).catch(unlessAborted(signal))
    }
  }
}

const userOf = (req: IncomingMessage) => req.headers['x-user'] as string | undefined

describe('ConnectionLimiter on node:http', () => {
  test('global max: the next client gets 503 + Retry-After and the source never starts', async () => {
    const limit = new ConnectionLimiter({ max: 3, retryAfter: 2500 })
    const started = { count: 0 }
    const reasons: CloseReason[] = []
    const registry = new StreamRegistry()
    const server = await nodeServer((req, res) => {
      void sendEventStream(req, res, endless(started), {
        limit,
        registry,
        headers: { 'Access-Control-Allow-Origin': '*' },
        onClose: (reason) => reasons.push(reason),
      })
    })
    const open: OpenStream[] = []
    for (let i = 0; i < 3; i++) open.push(await openStream(server.url))
    expect(open.map((s) => s.res.statusCode)).toEqual([200, 200, 200])
    expect(limit.size).toBe(3)

    const rejected = await fetchText(server.url)
    expect(rejected.status).toBe(503)
    expect(rejected.headers['retry-after']).toBe('3')
    expect(rejected.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(rejected.headers['cache-control']).toBe('no-store')
    // The caller's CORS header still reaches the browser, so it can read the 503.
    expect(rejected.headers['access-control-allow-origin']).toBe('*')
    expect(rejected.body).toBe('Too many open event streams; retry later.\n')
    expect(started.count).toBe(3)
    expect(reasons).toEqual(['rejected'])

    // Closing one stream frees its slot for the next client.
    open[0]!.destroy()
    await waitFor('slot freed on disconnect', () => limit.size, { until: (n) => n === 2 })
    const next = await openStream(server.url)
    expect(next.res.statusCode).toBe(200)
    next.destroy()
    for (const stream of open) stream.destroy()
    await waitFor('all slots freed', () => limit.size, { until: (n) => n === 0 })
    expect(reasons.filter((r) => r === 'disconnect')).toHaveLength(4)
  })

  test('maxPerKey caps one user, not the others; keys are forgotten when their streams end', async () => {
    const limit = new ConnectionLimiter({ maxPerKey: 2, key: userOf })
    const started = { count: 0 }
    const server = await nodeServer((req, res) => {
      void sendEventStream(req, res, endless(started), { limit, registry: new StreamRegistry() })
    })
    const a1 = await openStream(server.url, { 'x-user': 'a' })
    const a2 = await openStream(server.url, { 'x-user': 'a' })
    const a3 = await fetchText(server.url, { 'x-user': 'a' })
    const b1 = await openStream(server.url, { 'x-user': 'b' })
    // Requests without a key count only against `max` (unlimited here).
    const anonymous = await openStream(server.url)
    expect([a1, a2, b1, anonymous].map((s) => s.res.statusCode)).toEqual([200, 200, 200, 200])
    expect(a3.status).toBe(503)
    expect(a3.headers['retry-after']).toBe('5')
    expect(limit.count('a')).toBe(2)
    expect(limit.count('b')).toBe(1)
    expect(limit.size).toBe(4)
    a1.destroy()
    await waitFor('slot of user a freed', () => limit.count('a'), { until: (n) => n === 1 })
    const a4 = await openStream(server.url, { 'x-user': 'a' })
    expect(a4.res.statusCode).toBe(200)
    for (const s of [a2, a4, b1, anonymous]) s.destroy()
    await waitFor('all slots freed', () => limit.size, { until: (n) => n === 0 })
    expect(limit.count('a')).toBe(0)
    expect(started.count).toBe(5)
  })

  test('the slot is given back exactly once for every close reason', async () => {
    const limit = new ConnectionLimiter({ max: 100 })
    const registry = new StreamRegistry()
    const closes: CloseReason[] = []
    const errors: unknown[] = []
    const server = await nodeServer((req, res) => {
      const mode = req.url?.slice(1)
      const common = {
        limit,
        registry,
        onClose: (reason: CloseReason) => closes.push(reason),
        onError: (error: unknown) => errors.push(error),
      }
      if (mode === 'done') void sendEventStream(req, res, ['a', 'b'], common)
      else if (mode === 'throws-before-head') {
        sendEventStream(
          req,
          res,
          () => {
            throw new Error('not authorised')
          },
          common,
        ).catch(() => {
          res.statusCode = 401
          res.end()
        })
      } else if (mode === 'throws-mid-stream') {
        void sendEventStream(
          req,
          res,
          (async function* () {
            yield 'a'
            throw new Error('boom')
          })(),
          common,
        )
      } else if (mode === 'timeout') {
        // Big events to a client that never reads: the socket buffers fill, then sendTimeout.
        const big = 'x'.repeat(64 * 1024)
        void sendEventStream(
          req,
          res,
          (function* () {
            for (;;) yield big
          })(),
          shortDurations({ ...common, sendTimeout: 200 }),
        )
      } else {
        void sendEventStream(req, res, endless({ count: 0 }), common)
      }
    })
    const done = await fetchText(`${server.url}/done`)
    expect(done.status).toBe(200)
    const denied = await fetchText(`${server.url}/throws-before-head`)
    expect(denied.status).toBe(401)
    const failed = await fetchText(`${server.url}/throws-mid-stream`)
    expect(failed.status).toBe(200)
    const stuck = await stuckClient(server.port, '/timeout')
    const gone = await openStream(`${server.url}/disconnect`)
    gone.destroy()
    const shut = await openStream(`${server.url}/shutdown`)
    await waitFor('five streams closed', () => closes.length, { until: (n) => n === 5 })
    await registry.closeAll()
    await shut.ended
    stuck.destroy()
    await waitFor('six streams closed', () => closes.length, { until: (n) => n === 6 })
    expect([...closes].sort()).toEqual(
      ['disconnect', 'done', 'error', 'error', 'shutdown', 'timeout'].sort(),
    )
    expect(limit.size).toBe(0)
    // onError hears the mid-stream failure; the one before the head went to the caller (401).
    expect(errors).toHaveLength(1)
    expect((errors[0] as Error).message).toBe('boom')
  })
})

describe('ConnectionLimiter on the web path', () => {
  test('EventSourceResponse answers 503 past the limit and frees the slot on cancel', async () => {
    const limit = new ConnectionLimiter<Request>({
      max: 10,
      maxPerKey: 1,
      key: (request) => request.headers.get('x-user') ?? undefined,
      retryAfter: 1000,
    })
    const started = { count: 0 }
    const reasons: CloseReason[] = []
    const server = await webServer(
      (request) =>
        new EventSourceResponse(endless(started), {
          request,
          limit,
          registry: new StreamRegistry(),
          onClose: (reason) => reasons.push(reason),
        }),
    )
    const first = await openStream(server.url, { 'x-user': 'u' })
    expect(first.res.statusCode).toBe(200)
    const second = await fetchText(server.url, { 'x-user': 'u' })
    expect(second.status).toBe(503)
    expect(second.headers['retry-after']).toBe('1')
    expect(second.body).toContain('Too many open event streams')
    expect(started.count).toBe(1)
    first.destroy()
    await waitFor('slot freed', () => limit.size, { until: (n) => n === 0 })
    const third = await openStream(server.url, { 'x-user': 'u' })
    expect(third.res.statusCode).toBe(200)
    third.destroy()
    await waitFor('slot freed again', () => limit.size, { until: (n) => n === 0 })
    expect(reasons.sort()).toEqual(['disconnect', 'disconnect', 'rejected'])
  })

  test('a rejected EventSourceResponse is still an EventSourceResponse, closed as rejected', async () => {
    const limit = new ConnectionLimiter({ max: 0 })
    let called = false
    const response = new EventSourceResponse(
      () => {
        called = true
        return ['never']
      },
      { limit },
    )
    expect(response).toBeInstanceOf(EventSourceResponse)
    expect(response.status).toBe(503)
    expect(await response.closed).toBe('rejected')
    expect(await response.text()).toContain('retry later')
    expect(called).toBe(false)
  })

  test('a browser-like EventSource sees an error and stays closed after a 503', async () => {
    const limit = new ConnectionLimiter({ max: 0 })
    const server = await nodeServer((req, res) => {
      void sendEventStream(req, res, ['x'], { limit })
    })
    const source = new EventSource(server.url)
    const failure = await new Promise<{ code?: number }>((resolve) => {
      source.onerror = (event) => resolve(event as { code?: number })
    })
    expect(failure.code).toBe(503)
    expect(source.readyState).toBe(EventSource.CLOSED)
    source.close()
  })
})

describe('ConnectionLimiter options', () => {
  test.each([
    [{ max: -1 }, /"max": expected a non-negative integer/],
    [{ max: 1.5 }, /"max"/],
    [{ max: '10' }, /"max"/],
    [{ maxPerKey: 2 }, /"key": expected a function .* since maxPerKey is set/],
    [{ key: 'ip' }, /"key"/],
    [{ retryAfter: -5 }, /"retryAfter"/],
    [{ retryAfter: Number.NaN }, /"retryAfter"/],
    [{ retryAfter: 1e300 }, /"retryAfter": .* to 2147483647/],
    [{ retryAfter: 5 }, /"retryAfter": .*\(did you mean 5000 for 5 s\?\)/],
    [{ maxPerkey: 1 }, /Unknown option "maxPerkey" for ConnectionLimiter/],
  ])('%o is rejected', (options, message) => {
    let error: unknown
    try {
      new ConnectionLimiter(options as never)
    } catch (caught) {
      error = caught
    }
    expect(isSseError(error) && error.code).toBe('ERR_SSE_INVALID_OPTION')
    expect((error as Error).message).toMatch(message)
  })

  test('a key function returning a non-string is reported, and nothing is counted', () => {
    const limit = new ConnectionLimiter({ maxPerKey: 1, key: () => 42 as unknown as string })
    expect(() => limit.acquire({})).toThrow(/must return a string or undefined, received number 42/)
    expect(limit.size).toBe(0)
  })

  test('release is idempotent', () => {
    const limit = new ConnectionLimiter({ max: 1, maxPerKey: 1, key: () => 'k' })
    const release = limit.acquire({})!
    expect(limit.acquire({})).toBeUndefined()
    release()
    release()
    expect(limit.size).toBe(0)
    expect(limit.count('k')).toBe(0)
    expect(limit.acquire({})).toBeTypeOf('function')
  })

  test('the limit option must be a ConnectionLimiter', () => {
    expect(() => new EventSourceResponse(['a'], { limit: { max: 1 } as never })).toThrow(
      /Invalid option "limit": expected a ConnectionLimiter/,
    )
  })
})

describe('ConnectionLimiter through the framework adapters', () => {
  /** Opens two streams against `url`: the first holds the only slot, the second must get 503. */
  async function secondIsRejected(
    url: string,
    limit: ConnectionLimiter<never>,
    calls: () => number,
  ) {
    const first = await openStream(url)
    expect(first.res.statusCode).toBe(200)
    await waitFor('first stream holds the slot', () => limit.size, { until: (n) => n === 1 })
    const second = await fetchText(url)
    expect(second.status).toBe(503)
    expect(second.headers['retry-after']).toBe('5')
    // The second request's content function never ran.
    expect(calls()).toBe(1)
    first.destroy()
    await waitFor('slot freed', () => limit.size, { until: (n) => n === 0 })
    const third = await openStream(url)
    expect(third.res.statusCode).toBe(200)
    third.destroy()
    await waitFor('slot freed again', () => limit.size, { until: (n) => n === 0 })
    expect(calls()).toBe(2)
  }

  test('Hono (sse helper): content function not run past the limit', async () => {
    const { Hono } = await import('hono')
    const { sse } = await import('../../src/hono.ts')
    const limit = new ConnectionLimiter<Request>({ max: 1 })
    let calls = 0
    const app = new Hono()
    app.get('/', (c) =>
      sse(
        c,
        async () => {
          calls++
          return endless({ count: 0 })({ signal: c.req.raw.signal })
        },
        { limit, registry: new StreamRegistry() },
      ),
    )
    const server = await webServer(app.fetch)
    await secondIsRejected(server.url, limit as ConnectionLimiter<never>, () => calls)
  })

  test('Hono: a source made while the limit filled up is stopped, not leaked', async () => {
    const { openEventSourceResponse } = await import('../../src/transports/web-open.ts')
    const limit = new ConnectionLimiter({ max: 1 })
    const channel = createChannel<string>(1)
    let cancelled = false
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const made = (kind: 'channel' | 'stream') =>
      openEventSourceResponse(
        async () => {
          await gate
          if (kind === 'channel') return channel
          return new ReadableStream<string>({
            cancel() {
              cancelled = true
            },
          })
        },
        { limit, registry: new StreamRegistry() },
      )
    const pending = [made('channel'), made('stream')]
    // Another stream takes the last slot while the content functions await.
    const other = new EventSourceResponse(['x'], { limit, registry: new StreamRegistry() })
    expect(limit.size).toBe(1)
    release()
    for (const response of await Promise.all(pending)) {
      expect(response.status).toBe(503)
      expect(await response.closed).toBe('rejected')
    }
    // The sources no stream will read were stopped: the producer learns it at once.
    expect(channel.closed).toBe(true)
    await expect(channel.send('late')).rejects.toMatchObject({ code: 'ERR_SSE_CHANNEL_CLOSED' })
    await waitFor('ReadableStream cancelled', () => cancelled)
    await other.body?.cancel()
    await waitFor('slot freed', () => limit.size, { until: (n) => n === 0 })
  })

  test('Fastify (reply.sse): 503 past the limit, the key sees the FastifyRequest', async () => {
    const { default: Fastify } = await import('fastify')
    const { ovenSse } = await import('../../src/fastify.ts')
    const app = Fastify()
    await app.register(ovenSse)
    let calls = 0
    const seen: string[] = []
    const limit = new ConnectionLimiter<{ id: string }>({
      max: 1,
      key: (request) => {
        seen.push(typeof request.id)
        return undefined
      },
    })
    app.get('/', (_request, reply) =>
      reply.sse(
        async () => {
          calls++
          return endless({ count: 0 })({ signal: new AbortController().signal })
        },
        shortDurations({ limit: limit as never, registry: new StreamRegistry(), ping: 10 }),
      ),
    )
    await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      const { port } = app.server.address() as { port: number }
      await secondIsRejected(
        `http://127.0.0.1:${port}/`,
        limit as ConnectionLimiter<never>,
        () => calls,
      )
      // Asked for both requests (the second is the one refused), and each time a FastifyRequest.
      expect(seen.length).toBeGreaterThanOrEqual(2)
      expect(seen.every((type) => type === 'string')).toBe(true)
    } finally {
      app.server.closeAllConnections()
      await app.close()
    }
  })

  test('Koa (sse helper): 503 past the limit', async () => {
    const { default: Koa } = await import('koa')
    const { sse } = await import('../../src/koa.ts')
    const limit = new ConnectionLimiter({ max: 1 })
    let calls = 0
    const app = new Koa()
    app.use(async (ctx) => {
      await sse(
        ctx,
        async ({ signal }) => {
          calls++
          return endless({ count: 0 })({ signal })
        },
        { limit, registry: new StreamRegistry() },
      )
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    try {
      const { port } = server.address() as { port: number }
      await secondIsRejected(
        `http://127.0.0.1:${port}/`,
        limit as ConnectionLimiter<never>,
        () => calls,
      )
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
