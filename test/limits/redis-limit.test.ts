/**
 * Connection limits across instances: `RedisConnectionLimiter` on a real redis-server of this
 * file's own, several instances (limiters with their own clients and servers in this process;
 * separate processes for the kill), real sockets. `max` and `maxPerKey` hold under racing
 * connects, slots come back on disconnect, done and shutdown, a killed instance's slots expire
 * within the lease, and an unreachable Redis is answered as `whenUnreachable` says.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { fileURLToPath } from 'node:url'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import {
  type CloseReason,
  EventSourceResponse,
  isSseError,
  type StreamOptions,
  StreamRegistry,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { RedisConnectionLimiter, type RedisConnectionLimitOptions } from '../../src/redis.ts'
import { shortDurations } from '../../src/testing.ts'
import { openEventSourceResponse } from '../../src/transports/web-open.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { closeAllServers, nodeServer, webServer } from '../helpers/servers.ts'
import { Teardown } from '../helpers/teardown.ts'
import { waitFor, within } from '../helpers/wait.ts'
import { fetchText, type OpenStream, openStream } from '../reliability/support.ts'

const fixture = fileURLToPath(new URL('./fixtures/limited-server.ts', import.meta.url))

let redis: RedisServer
let prefixes = 0
const teardown = new Teardown()

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis?.close()
})

afterEach(async () => {
  teardown.push(closeAllServers)
  await teardown.run()
})

type Options<Req> = Omit<RedisConnectionLimitOptions<Req>, 'url' | 'prefix'>

/** A limiter on the test's Redis: one "instance" (its own client and id), closed on teardown. */
function limiter<Req>(prefix: string, options: Options<Req> = {}) {
  const errors: unknown[] = []
  const limit = new RedisConnectionLimiter<Req>(
    shortDurations({
      url: redis.url,
      prefix,
      lease: 3000,
      commandTimeout: 1000,
      onError: (error: unknown) => errors.push(error),
      ...options,
    }),
  )
  teardown.push(() => limit.close())
  return { limit, errors }
}

const userOf = (req: { headers: Record<string, unknown> }) =>
  req.headers['x-user'] as string | undefined
const webUserOf = (request: Request | undefined) => request?.headers.get('x-user') ?? undefined

/** A source that sends one event, then stays open until the stream ends. */
function holdOpen(started: { count: number }) {
  return async function* ({ signal }: { signal: AbortSignal }) {
    started.count++
    yield { data: 'open' }
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
  }
}

/** A node:http instance: its limiter, its server, and how often its source started. */
async function nodeInstance(
  prefix: string,
  options: Options<IncomingMessage>,
  stream: Partial<StreamOptions<IncomingMessage>> = {},
) {
  const { limit, errors } = limiter<IncomingMessage>(prefix, options)
  const started = { count: 0 }
  const seen = { count: 0 }
  const reasons: CloseReason[] = []
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    seen.count++
    void sendEventStream(req, res, holdOpen(started), {
      limit,
      headers: { 'Access-Control-Allow-Origin': '*' },
      onClose: (reason) => reasons.push(reason),
      ...stream,
    })
  }
  const server = await nodeServer(handler)
  return { limit, errors, server, started, seen, reasons }
}

/** Opens a stream, or reads a refusal to its end; never throws for a status. */
async function connect(url: string, headers: Record<string, string> = {}) {
  const stream = await openStream(url, headers)
  if (stream.res.statusCode !== 200) await stream.ended
  return stream
}

/** 503 + Retry-After + text body + CORS header, as ConnectionLimiter answers. */
function expectRefusal(stream: OpenStream, retryAfter = '5') {
  expect(stream.res.statusCode).toBe(503)
  expect(stream.res.headers['retry-after']).toBe(retryAfter)
  expect(stream.res.headers['content-type']).toBe('text/plain; charset=utf-8')
  expect(stream.res.headers['cache-control']).toBe('no-store')
  expect(stream.res.headers['access-control-allow-origin']).toBe('*')
  expect(stream.text()).toBe('Too many open event streams; retry later.\n')
}

describe('node path, three instances on one Redis', () => {
  test('50 racing connects for maxPerKey 5: exactly 5 admitted, 45 refused with Retry-After; disconnects free them', async () => {
    const prefix = `race${prefixes++}`
    const instances = await Promise.all(
      [0, 1, 2].map(() => nodeInstance(prefix, { max: 1000, maxPerKey: 5, key: userOf })),
    )
    const streams = await Promise.all(
      Array.from({ length: 50 }, (_, n) =>
        connect(instances[n % 3]!.server.url, { 'x-user': 'racer' }),
      ),
    )
    teardown.push(async () => {
      for (const stream of streams) stream.destroy()
    })
    const admitted = streams.filter((stream) => stream.res.statusCode === 200)
    const refused = streams.filter((stream) => stream.res.statusCode !== 200)
    expect(admitted).toHaveLength(5)
    for (const stream of refused) expectRefusal(stream)
    // The content function ran for the admitted streams only.
    expect(instances.reduce((sum, i) => sum + i.started.count, 0)).toBe(5)
    const [a] = instances
    expect(await a!.limit.count('racer')).toBe(5)
    expect(await a!.limit.count()).toBe(5)
    expect(instances.reduce((sum, i) => sum + i.limit.size, 0)).toBe(5)
    // Another user is not affected by the first one's limit.
    const other = await connect(a!.server.url, { 'x-user': 'other' })
    expect(other.res.statusCode).toBe(200)
    other.destroy()
    for (const stream of admitted) stream.destroy()
    await waitFor('every slot given back on disconnect', () => a!.limit.count(), {
      until: (n) => n === 0,
    })
    expect(await a!.limit.count('racer')).toBe(0)
    await waitFor('each instance holds nothing', () => instances.map((i) => i.limit.size), {
      until: (sizes) => sizes.every((size) => size === 0),
    })
    const reasons = instances.flatMap((i) => i.reasons)
    expect(reasons.filter((r) => r === 'rejected')).toHaveLength(45)
    expect(reasons.filter((r) => r === 'disconnect')).toHaveLength(6)
    for (const i of instances) expect(i.errors).toEqual([])
  })

  test('30 racing connects for max 7 (no key): exactly 7 admitted', async () => {
    const prefix = `max${prefixes++}`
    const instances = await Promise.all([0, 1, 2].map(() => nodeInstance(prefix, { max: 7 })))
    const streams = await Promise.all(
      Array.from({ length: 30 }, (_, n) => connect(instances[n % 3]!.server.url)),
    )
    teardown.push(async () => {
      for (const stream of streams) stream.destroy()
    })
    const admitted = streams.filter((stream) => stream.res.statusCode === 200)
    expect(admitted).toHaveLength(7)
    for (const stream of streams) if (stream.res.statusCode !== 200) expectRefusal(stream)
    expect(await instances[0]!.limit.count()).toBe(7)
    // One leaves: its slot goes to the next client, on any instance.
    admitted[0]!.destroy()
    await waitFor('a slot given back', () => instances[0]!.limit.count(), {
      until: (n) => n === 6,
    })
    const next = await connect(instances[2]!.server.url)
    expect(next.res.statusCode).toBe(200)
    expectRefusal(await connect(instances[1]!.server.url))
    for (const stream of [...admitted, next]) stream.destroy()
    await waitFor('all slots given back', () => instances[0]!.limit.count(), {
      until: (n) => n === 0,
    })
  })

  test('slots come back when a stream is done and on shutdown (closeAll)', async () => {
    const prefix = `ends${prefixes++}`
    const { limit } = limiter<IncomingMessage>(prefix, { max: 10 })
    const registry = new StreamRegistry()
    const reasons: CloseReason[] = []
    const server = await nodeServer((req, res) => {
      const content = req.url === '/done' ? ['a', 'b'] : holdOpen({ count: 0 })
      void sendEventStream(req, res, content, {
        limit,
        registry,
        onClose: (reason) => reasons.push(reason),
      })
    })
    const done = await fetchText(`${server.url}/done`)
    expect(done.status).toBe(200)
    expect(done.body).toContain('data: b')
    await waitFor('the finished stream gave its slot back', () => limit.count(), {
      until: (n) => n === 0,
    })
    const open = await Promise.all([1, 2, 3].map(() => connect(`${server.url}/hold`)))
    expect(open.map((stream) => stream.res.statusCode)).toEqual([200, 200, 200])
    expect(await limit.count()).toBe(3)
    await registry.closeAll()
    await Promise.all(open.map((stream) => stream.ended))
    await waitFor('slots given back on shutdown', () => limit.count(), {
      until: (n) => n === 0,
    })
    expect(limit.size).toBe(0)
    expect([...reasons].sort()).toEqual(['done', 'shutdown', 'shutdown', 'shutdown'])
  })

  test('a client that leaves while the limiter is asked does not keep a slot', async () => {
    const prefix = `leave${prefixes++}`
    const { limit, started, reasons, server, seen, errors } = await nodeInstance(prefix, {
      max: 10,
      commandTimeout: 8000,
      lease: 20_000,
    })
    await leaveWhileAsked(
      limit as RedisConnectionLimiter<never>,
      server.url,
      () => seen.count,
      reasons,
    )
    expect(started.count).toBe(0)
    // Redis answered (after the thaw): the slot was granted, then given back.
    expect(errors).toEqual([])
  })
})

/**
 * Freezes Redis, sends a request to `url` and drops it once the server has it (its stream
 * waits for the limiter), thaws Redis: the slot Redis then grants is given back at once.
 * `seen()` counts the requests the server got; `reasons` are its streams' close reasons.
 */
async function leaveWhileAsked(
  limit: RedisConnectionLimiter<never>,
  url: string,
  seen: () => number,
  reasons: readonly CloseReason[],
) {
  // Connected first, so the acquire is sent on a ready connection and waits for Redis.
  expect(await limit.count()).toBe(0)
  redis.freeze()
  teardown.push(async () => {
    if (redis.running) redis.thaw()
  })
  const request = httpRequest(url, { agent: false })
  request.on('error', () => {})
  request.end()
  await waitFor('the request to reach the server', () => seen() === 1)
  request.destroy()
  await waitFor('the stream to end as its client left', () => reasons.length === 1)
  expect(reasons).toEqual(['disconnect'])
  redis.thaw()
  await waitFor('the late slot given back', () => limit.count(), { until: (n) => n === 0 })
  expect(limit.size).toBe(0)
}

describe('node adapters', () => {
  /** First stream admitted, second refused (its content function not run), then freed. */
  async function secondIsRefused(
    url: string,
    limit: RedisConnectionLimiter<never>,
    calls: () => number,
  ) {
    const first = await connect(url)
    expect(first.res.statusCode).toBe(200)
    const second = await connect(url)
    expect(second.res.statusCode).toBe(503)
    expect(second.res.headers['retry-after']).toBe('5')
    expect(second.text()).toBe('Too many open event streams; retry later.\n')
    expect(calls()).toBe(1)
    first.destroy()
    await waitFor('the slot given back', () => limit.count(), { until: (n) => n === 0 })
  }

  test('Fastify (reply.sse) waits for the limiter', async () => {
    const { default: Fastify } = await import('fastify')
    const { ovenSse } = await import('../../src/fastify.ts')
    const { limit } = limiter(`fastify${prefixes++}`, { max: 1 })
    let calls = 0
    const app = Fastify()
    await app.register(ovenSse)
    app.get('/', (_request, reply) =>
      reply.sse(
        async () => {
          calls++
          return holdOpen({ count: 0 })({ signal: new AbortController().signal })
        },
        { limit },
      ),
    )
    await app.listen({ port: 0, host: '127.0.0.1' })
    teardown.push(async () => {
      app.server.closeAllConnections()
      await app.close()
    })
    const { port } = app.server.address() as { port: number }
    await secondIsRefused(`http://127.0.0.1:${port}/`, limit as never, () => calls)
  })

  test('Koa (sse helper) waits for the limiter', async () => {
    const { default: Koa } = await import('koa')
    const { sse } = await import('../../src/koa.ts')
    const { limit } = limiter<IncomingMessage>(`koa${prefixes++}`, { max: 1 })
    let calls = 0
    const app = new Koa()
    app.use(async (ctx) => {
      await sse(
        ctx,
        async ({ signal }) => {
          calls++
          return holdOpen({ count: 0 })({ signal })
        },
        { limit },
      )
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    teardown.push(async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    })
    const { port } = server.address() as { port: number }
    await secondIsRefused(`http://127.0.0.1:${port}/`, limit as never, () => calls)
  })
})

describe('an instance killed with SIGKILL', () => {
  const children: ChildProcess[] = []
  afterEach(() => {
    for (const child of children.splice(0)) child.kill('SIGKILL')
  })

  /** Starts the fixture as another process; resolves with its URL once it listens. */
  async function spawnInstance(prefix: string, lease: number, perKey: number) {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fixture, redis.url, prefix, String(lease), String(perKey)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    children.push(child)
    let output = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    // Seconds on a busy two-core machine: tsx compiles the fixture first.
    const port = await waitFor(
      'the instance to listen',
      () => {
        if (child.exitCode !== null) throw new Error(`instance exited:\n${output}`)
        return /PORT (\d+)/.exec(output)?.[1]
      },
      { timeout: 40_000 },
    )
    return { child, url: `http://127.0.0.1:${port}/events` }
  }

  test('its slots stop counting within one lease of the kill', async () => {
    const prefix = `kill${prefixes++}`
    const LEASE = 1500
    const [a, b] = await Promise.all([
      spawnInstance(prefix, LEASE, 4),
      spawnInstance(prefix, LEASE, 4),
    ])
    const { limit: observer } = limiter(prefix)
    const user = { 'x-user': 'k' }
    const onA = await Promise.all([1, 2, 3].map(() => connect(a!.url, user)))
    const onB = await connect(b!.url, user)
    for (const stream of [...onA, onB]) expect(stream.res.statusCode).toBe(200)
    teardown.push(async () => {
      for (const stream of [...onA, onB]) stream.destroy()
    })
    expect((await connect(b!.url, user)).res.statusCode).toBe(503)
    expect(await observer.count('k')).toBe(4)

    const client = createClient({ url: redis.url })
    await client.connect()
    teardown.push(() => client.close())
    const exited = new Promise((resolve) => a!.child.once('exit', resolve))
    a!.child.kill('SIGKILL')
    const killedAt = performance.now()
    await within(exited, 10_000, 'the killed instance to exit')
    // One round trip first: whatever the instance wrote before it died has been run by then.
    await client.sendCommand(['PING'])
    const [seconds, micros] = (await client.sendCommand(['TIME'])) as [string, string]
    const redisNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
    // Every slot of the killed instance expires (on Redis's clock) at most a lease after now.
    const reply = (await client.sendCommand([
      'ZRANGE',
      `{${prefix}}:k:k`,
      '0',
      '-1',
      'WITHSCORES',
    ])) as unknown[]
    // RESP2 gives member, score, member, ...; RESP3 gives [member, score] pairs.
    const expiries = reply
      .flat()
      .filter((_, n) => n % 2 === 1)
      .map(Number)
    expect(expiries).toHaveLength(4)
    for (const expiry of expiries) expect(expiry).toBeLessThanOrEqual(redisNow + LEASE)
    await Promise.all(onA.map((stream) => stream.ended))

    await waitFor('the killed instance to stop counting', () => observer.count('k'), {
      until: (n) => n === 1,
    })
    const released = performance.now() - killedAt
    console.info(
      JSON.stringify({
        figure: 'cluster-limit release after SIGKILL',
        leaseMs: LEASE,
        releasedMs: Math.round(released),
      }),
    )
    // A new stream of that user is admitted on the surviving instance.
    const again = await connect(b!.url, user)
    expect(again.res.statusCode).toBe(200)
    again.destroy()
    // The survivor keeps its own slot alive past several leases (it renews every third).
    expect(await observer.count('k')).toBeGreaterThanOrEqual(1)
    // Generous for a loaded machine (polled every 5 ms; measured far closer to one lease).
    expect(released).toBeLessThan(LEASE + 5000)
  }, 60_000)
})

describe('web path', () => {
  /** A web instance: `openEventSourceResponse` (or `respond`) behind @hono/node-server. */
  async function webInstance(
    prefix: string,
    options: Options<Request | undefined>,
    respond?: (
      limit: RedisConnectionLimiter<Request | undefined>,
      content: ReturnType<typeof holdOpen>,
      onClose: (reason: CloseReason) => void,
    ) => (request: Request) => Promise<Response>,
  ) {
    const { limit, errors } = limiter<Request | undefined>(prefix, options)
    const started = { count: 0 }
    const seen = { count: 0 }
    const reasons: CloseReason[] = []
    const onClose = (reason: CloseReason) => reasons.push(reason)
    const handle =
      respond?.(limit, holdOpen(started), onClose) ??
      ((request: Request) =>
        openEventSourceResponse(holdOpen(started), {
          request,
          limit,
          headers: { 'Access-Control-Allow-Origin': '*' },
          onClose,
        }))
    const server = await webServer((request) => {
      seen.count++
      return handle(request)
    })
    return { limit, errors, server, started, seen, reasons }
  }

  test('openEventSourceResponse on two instances: 30 racing connects for maxPerKey 4 admit exactly 4', async () => {
    const prefix = `web${prefixes++}`
    const instances = await Promise.all(
      [0, 1].map(() => webInstance(prefix, { maxPerKey: 4, key: webUserOf })),
    )
    const streams = await Promise.all(
      Array.from({ length: 30 }, (_, n) =>
        connect(instances[n % 2]!.server.url, { 'x-user': 'w' }),
      ),
    )
    teardown.push(async () => {
      for (const stream of streams) stream.destroy()
    })
    const admitted = streams.filter((stream) => stream.res.statusCode === 200)
    expect(admitted).toHaveLength(4)
    for (const stream of streams) if (stream.res.statusCode !== 200) expectRefusal(stream)
    expect(instances[0]!.started.count + instances[1]!.started.count).toBe(4)
    expect(await instances[1]!.limit.count('w')).toBe(4)
    for (const stream of admitted) stream.destroy()
    await waitFor('slots given back on disconnect', () => instances[0]!.limit.count('w'), {
      until: (n) => n === 0,
    })
    const reasons = () => [...instances[0]!.reasons, ...instances[1]!.reasons]
    await waitFor('every admitted stream to end', () => reasons().length, {
      until: (n) => n === 30,
    })
    expect(reasons().filter((r) => r === 'rejected')).toHaveLength(26)
    expect(reasons().filter((r) => r === 'disconnect')).toHaveLength(4)
    for (const instance of instances) expect(instance.errors).toEqual([])
  })

  test('the Hono adapter and a plain handler share max 2 across instances', async () => {
    const { Hono } = await import('hono')
    const { sse } = await import('../../src/hono.ts')
    const prefix = `hono${prefixes++}`
    const viaHono = await webInstance(prefix, { max: 2 }, (limit, content, onClose) => {
      const app = new Hono()
      app.get('/', (c) =>
        sse(c, content, { limit, headers: { 'Access-Control-Allow-Origin': '*' }, onClose }),
      )
      return async (request) => app.fetch(request)
    })
    const plain = await webInstance(prefix, { max: 2 })
    const streams = await Promise.all(
      Array.from({ length: 10 }, (_, n) => connect((n % 2 ? viaHono : plain).server.url)),
    )
    teardown.push(async () => {
      for (const stream of streams) stream.destroy()
    })
    expect(streams.filter((stream) => stream.res.statusCode === 200)).toHaveLength(2)
    for (const stream of streams) if (stream.res.statusCode !== 200) expectRefusal(stream)
    expect(viaHono.started.count + plain.started.count).toBe(2)
    for (const stream of streams) stream.destroy()
    await waitFor('slots given back', () => plain.limit.count(), { until: (n) => n === 0 })
  })

  test('ready content (not a function) waits for the limiter too', async () => {
    const prefix = `ready${prefixes++}`
    const { limit } = limiter<Request | undefined>(prefix, { max: 1 })
    const first = await openEventSourceResponse(['a'], { limit })
    expect(first.status).toBe(200)
    const second = await openEventSourceResponse(['b'], { limit })
    expect(second.status).toBe(503)
    expect(second.headers.get('retry-after')).toBe('5')
    expect(await second.closed).toBe('rejected')
    expect(await first.text()).toContain('data: a')
    expect(await first.closed).toBe('done')
    expect(await limit.count()).toBe(0)
  })

  test('a client that leaves while the limiter is asked does not keep a slot', async () => {
    const prefix = `webleave${prefixes++}`
    const { limit, seen, started, reasons, server, errors } = await webInstance(prefix, {
      max: 10,
      commandTimeout: 8000,
      lease: 20_000,
    })
    await leaveWhileAsked(
      limit as RedisConnectionLimiter<never>,
      server.url,
      () => seen.count,
      reasons,
    )
    expect(started.count).toBe(0)
    // Redis answered (after the thaw): the slot was granted, then given back.
    expect(errors).toEqual([])
  })

  test('new EventSourceResponse refuses an asynchronous limiter by name, and keeps no slot', async () => {
    const prefix = `sync${prefixes++}`
    const { limit } = limiter<Request | undefined>(prefix, { max: 1 })
    const reasons: CloseReason[] = []
    let error: unknown
    try {
      new EventSourceResponse(['a'], { limit, onClose: (reason) => reasons.push(reason) })
    } catch (caught) {
      error = caught
    }
    expect(isSseError(error) && error.code).toBe('ERR_SSE_INVALID_OPTION')
    expect((error as Error).message).toBe(
      'Invalid option "limit": this limiter answers asynchronously (a RedisConnectionLimiter), ' +
        'and new EventSourceResponse(...) must fix its status at once. Use ' +
        '`await openEventSourceResponse(content, options)` instead, or an adapter ' +
        '(oven-sse/hono, oven-sse/h3, oven-sse/elysia), which wait for the limiter.',
    )
    expect(reasons).toEqual(['error'])
    // Asked after the refused acquire on the same connection: the slot it took is back.
    await waitFor('the slot of the refused response given back', () => limit.count(), {
      until: (n) => n === 0,
    })
    expect(limit.size).toBe(0)
    const next = await openEventSourceResponse(['b'], { limit })
    expect(next.status).toBe(200)
    await next.text()
  })
})

describe('Redis unreachable', () => {
  /** An instance on a Redis of its own, which the test stops or freezes. */
  async function isolated(options: Options<IncomingMessage>) {
    const own = await startRedis()
    teardown.push(() => own.close())
    const errors: unknown[] = []
    const limit = new RedisConnectionLimiter<IncomingMessage>(
      shortDurations({
        url: own.url,
        lease: 3000,
        commandTimeout: 1000,
        max: 10,
        onError: (error: unknown) => errors.push(error),
        ...options,
      }),
    )
    teardown.push(() => limit.close())
    const server = await nodeServer((req, res) => {
      void sendEventStream(req, res, holdOpen({ count: 0 }), {
        limit,
        headers: { 'Access-Control-Allow-Origin': '*' },
      })
    })
    // Connected and working before the outage.
    const first = await connect(server.url)
    expect(first.res.statusCode).toBe(200)
    first.destroy()
    await waitFor('the first slot given back', () => limit.count(), { until: (n) => n === 0 })
    return { own, limit, errors, server }
  }

  /** Connects and measures how long the answer took. */
  async function timed(url: string) {
    const startedAt = performance.now()
    const stream = await connect(url)
    return { stream, took: Math.round(performance.now() - startedAt) }
  }

  test('stopped, by default: 503 + Retry-After within commandTimeout, reported as ERR_SSE_BROKER', async () => {
    const { own, errors, server } = await isolated({})
    await own.stop()
    const answers = [await timed(server.url), await timed(server.url)]
    for (const { stream } of answers) expectRefusal(stream)
    console.info(
      JSON.stringify({
        figure: 'refusal while Redis is stopped',
        commandTimeoutMs: 1000,
        tookMs: answers.map((a) => a.took),
      }),
    )
    // Bounded by commandTimeout (1000 ms), with room for a loaded machine.
    for (const { took } of answers) expect(took).toBeLessThan(3000)
    expect(errors.length).toBeGreaterThanOrEqual(2)
    for (const error of errors) {
      expect(isSseError(error) && error.code).toBe('ERR_SSE_BROKER')
      expect((error as Error).message).toMatch(/^RedisConnectionLimiter: could not take a slot/)
    }
  })

  test('frozen (takes commands, never answers): 503 once commandTimeout has passed, then back to normal', async () => {
    const { own, limit, errors, server } = await isolated({})
    own.freeze()
    teardown.push(async () => {
      if (own.running) own.thaw()
    })
    const { stream, took } = await timed(server.url)
    expectRefusal(stream)
    console.info(
      JSON.stringify({
        figure: 'refusal while Redis is frozen',
        commandTimeoutMs: 1000,
        tookMs: took,
      }),
    )
    expect(took).toBeGreaterThanOrEqual(950)
    expect(took).toBeLessThan(3000)
    expect((errors[0] as Error).message).toContain('no answer from Redis in 1000 ms')
    own.thaw()
    // The acquire Redis runs after the thaw was taken back behind it: nothing leaked.
    await waitFor('no slot left by the unanswered acquire', () => limit.count(), {
      until: (n) => n === 0,
    })
    const after = await connect(server.url)
    expect(after.res.statusCode).toBe(200)
    after.destroy()
  })

  test("whenUnreachable 'admit': streams open during the outage and are counted once Redis is back", async () => {
    const { own, limit, errors, server } = await isolated({ whenUnreachable: 'admit' })
    await own.stop()
    const during = await connect(server.url)
    expect(during.res.statusCode).toBe(200)
    teardown.push(async () => during.destroy())
    expect(limit.size).toBe(1)
    expect(errors.length).toBeGreaterThanOrEqual(1)
    // Back, empty (no persistence): the next renewal (every third of the 3000 ms lease) adds it.
    await own.start()
    await waitFor(
      'the stream opened during the outage to be counted',
      () => limit.count().catch(() => -1),
      {
        until: (n) => n === 1,
      },
    )
    during.destroy()
    await waitFor('its slot given back', () => limit.count(), { until: (n) => n === 0 })
  })
})

describe('options', () => {
  test.each([
    [{}, /Invalid option "url": expected a Redis URL, or a client option, received undefined/],
    [{ url: 'redis://x', client: 5 }, /Invalid option "client": expected a node-redis client/],
    [
      { url: 'redis://x', prefix: '{a}' },
      /Invalid option "prefix": expected a non-empty string without braces/,
    ],
    [
      { url: 'redis://x', lease: 1000 },
      /Invalid option "lease": expected a whole number of milliseconds from 5000 .* wrap the options in shortDurations\(\)/,
    ],
    [
      { url: 'redis://x', lease: 5000, commandTimeout: 3000 },
      /Invalid option "lease": expected at least twice commandTimeout \(3000 ms\).*received number 5000/,
    ],
    [{ url: 'redis://x', commandTimeout: 0 }, /Invalid option "commandTimeout"/],
    [
      { url: 'redis://x', whenUnreachable: 'open' },
      /Invalid option "whenUnreachable": expected "reject" or "admit", received string "open"/,
    ],
    [{ url: 'redis://x', onError: 'log' }, /Invalid option "onError": expected a function/],
    [{ url: 'redis://x', maxPerKey: 2 }, /"key": expected a function .* since maxPerKey is set/],
    [{ url: 'redis://x', max: -1 }, /"max": expected a non-negative integer/],
    [{ url: 'redis://x', retryAfter: 5 }, /"retryAfter": .*\(did you mean 5000 for 5 s\?\)/],
    [{ url: 'redis://x', maxPerkey: 1 }, /Unknown option "maxPerkey" for RedisConnectionLimiter/],
  ])('%o is refused with ERR_SSE_INVALID_OPTION', (options, message) => {
    let error: unknown
    try {
      new RedisConnectionLimiter(options as never)
    } catch (caught) {
      error = caught
    }
    expect(isSseError(error) && error.code).toBe('ERR_SSE_INVALID_OPTION')
    expect((error as Error).message).toMatch(message)
  })

  test('a key function returning a non-string throws at once, before Redis is asked', async () => {
    const { limit } = limiter(`key${prefixes++}`, { maxPerKey: 1, key: () => 42 as never })
    expect(() => limit.acquire({})).toThrow(
      'RedisConnectionLimiter key(request) must return a string or undefined, received number 42.',
    )
    expect(await limit.count()).toBe(0)
  })
})
