/**
 * Topic authorization over real sockets, with real JWTs (jose): the recipe of
 * docs/authorization.md on the Node transport and on Hono (`@hono/node-server`). A valid token
 * gets exactly its granted topics (patterns, a `{sub}` parameter, a private topic); an expired
 * token, a wrong signature, a wrong audience, no token → 401; nothing granted → 403; a hook
 * that throws or never settles → the framework's 500. On refusal the raw response is checked
 * byte by byte: a plain-text head and body, nothing of an event stream.
 */

import type { IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import { Hono } from 'hono'
import { errors, generateSecret, jwtVerify, SignJWT } from 'jose'
import { afterEach, describe, expect, test } from 'vitest'
import { sse } from '../../src/hono.ts'
import { Broadcaster, isSseError } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { readEvents } from '../../src/testing.ts'
import { closeAllServers, nodeServer, type TestServer, webServer } from '../helpers/servers.ts'
import { Teardown } from '../helpers/teardown.ts'
import { waitFor } from '../helpers/wait.ts'

const teardown = new Teardown()
afterEach(async () => {
  await teardown.run()
  await closeAllServers()
})

const key = await generateSecret('HS256')
const otherKey = await generateSecret('HS256')

/** A token as an auth server would issue it. */
function token(
  claims: { sub: string; topics: string[] },
  options: { key?: Uint8Array | CryptoKey; audience?: string; expiresIn?: string | number } = {},
): Promise<string> {
  return new SignJWT({ topics: claims.topics })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.sub)
    .setIssuer('https://auth.example')
    .setAudience(options.audience ?? 'oven-events')
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '5m')
    .sign(options.key ?? key)
}

/** The bearer token of a Node or web request. */
function bearer(request: IncomingMessage | Request): string | undefined {
  const header =
    request instanceof Request
      ? request.headers.get('authorization')
      : request.headers.authorization
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined
}

// The recipe (docs/authorization.md): the token carries the grants, `{sub}` bound to its subject.
function makeHub(extra: { authorizeTimeout?: number; broken?: 'throws' | 'hangs' } = {}) {
  return new Broadcaster<undefined, IncomingMessage | Request>({
    privateTopics: ['user/*/**'],
    authorizeTimeout: extra.authorizeTimeout,
    authorize: async (request) => {
      if (extra.broken === 'throws') throw new Error('key server unreachable')
      if (extra.broken === 'hangs') return new Promise<never>(() => {})
      const jwt = bearer(request)
      if (jwt === undefined) return { refuse: 401, reason: 'no bearer token' }
      try {
        const { payload } = await jwtVerify(jwt, key, {
          issuer: 'https://auth.example',
          audience: 'oven-events',
        })
        const { topics } = payload
        if (!Array.isArray(topics) || !topics.every((topic) => typeof topic === 'string')) {
          return { refuse: 403, reason: 'token without a topics claim' }
        }
        return { grant: topics, params: { sub: payload.sub ?? '' } }
      } catch (error) {
        // Expired, bad signature, wrong audience or issuer, malformed: the client's problem.
        if (error instanceof errors.JOSEError) return { refuse: 401, reason: error.code }
        throw error
      }
    },
  })
}

type Hub = ReturnType<typeof makeHub>

/** Servers answering GET /events?topic=a&topic=b with the authorized subscription. */
const transports: Record<string, (hub: Hub, failures: unknown[]) => Promise<TestServer>> = {
  node: (hub, failures) =>
    nodeServer((req, res) => {
      const topics = new URL(req.url ?? '/', 'http://x').searchParams.getAll('topic')
      sendEventStream(req, res, (ctx) => hub.subscribeAuthorized(topics, ctx)).catch(
        (error: unknown) => {
          // What a framework's error handler does: answer 500 for an error.
          failures.push(error)
          res.writeHead(500, { 'Content-Type': 'text/plain' })
          res.end('Internal Server Error\n')
        },
      )
    }),
  hono: (hub, failures) => {
    const app = new Hono()
    app.get('/events', (c) =>
      sse(c, (ctx) => hub.subscribeAuthorized(c.req.queries('topic') ?? [], ctx)),
    )
    app.onError((error, c) => {
      failures.push(error)
      return c.text('Internal Server Error\n', 500)
    })
    return webServer(app.fetch)
  },
}

/** The whole raw response of a GET, read from the socket until the server closes it. */
function rawGet(port: number, path: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      text += chunk
    })
    socket.on('end', () => resolve(text))
    socket.on('error', reject)
    const lines = Object.entries({ ...headers, Host: '127.0.0.1', Connection: 'close' }).map(
      ([name, value]) => `${name}: ${value}\r\n`,
    )
    socket.write(`GET ${path} HTTP/1.1\r\n${lines.join('')}\r\n`)
  })
}

/** Splits a raw response into status, lower-cased headers and body (not chunked or chunked). */
function parseRaw(raw: string): { status: number; headers: Map<string, string>; body: string } {
  const [head = '', ...rest] = raw.split('\r\n\r\n')
  const [statusLine = '', ...headerLines] = head.split('\r\n')
  const headers = new Map(
    headerLines.map((line) => {
      const colon = line.indexOf(':')
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()] as const
    }),
  )
  let body = rest.join('\r\n\r\n')
  if (headers.get('transfer-encoding') === 'chunked') {
    let out = ''
    for (let at = 0; ; ) {
      const end = body.indexOf('\r\n', at)
      const size = Number.parseInt(body.slice(at, end), 16)
      if (!(size > 0)) break
      out += body.slice(end + 2, end + 2 + size)
      at = end + 2 + size + 2
    }
    body = out
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body }
}

describe.each(Object.keys(transports))('%s', (name) => {
  async function start(options: Parameters<typeof makeHub>[0] = {}) {
    const hub = makeHub(options)
    teardown.push(() => hub.close())
    const failures: unknown[] = []
    const server = await transports[name]!(hub, failures)
    return { hub, server, failures }
  }

  test('a valid token receives exactly its granted topics: patterns, {sub}, its private topic', async () => {
    const { hub, server, failures } = await start()
    const jwt = await token({ sub: 'alice', topics: ['orders/*', 'user/{sub}/**'] })
    const query = ['orders/*', 'user/alice/**', 'user/bob/**', '**', 'admin/log']
      .map((topic) => `topic=${encodeURIComponent(topic)}`)
      .join('&')
    const reading = readEvents(`${server.url}/events?${query}`, {
      count: 3,
      timeout: 10_000,
      headers: { Authorization: `Bearer ${jwt}` },
    })
    reading.catch(() => {})
    await waitFor('the subscriber', () => hub.subscribers(), { until: (n) => n === 1 })
    for (const topic of [
      'admin/log', // requested but not granted
      'orders/1', // granted by orders/*
      'user/bob/inbox', // private, and bob's
      'orders/1/items', // orders/* is one segment
      'user/alice/inbox', // private, granted explicitly by user/{sub}/**
      'news', // matched by the requested ** only, not granted
      'orders/2',
    ]) {
      await hub.publish(topic, topic)
    }
    const events = await reading
    expect(events.map((event) => event.data)).toEqual(['orders/1', 'user/alice/inbox', 'orders/2'])
    expect(failures).toEqual([])
  })

  test.each([
    ['expired', { expiresIn: Math.floor(Date.now() / 1000) - 60 }, 401],
    ['signed with another key', { key: otherKey }, 401],
    ['for another audience', { audience: 'billing' }, 401],
  ] as const)('a token %s gets 401 and nothing of a stream', async (_, options, status) => {
    const { hub, server, failures } = await start()
    const jwt = await token({ sub: 'alice', topics: ['orders/*'] }, options)
    const raw = await rawGet(server.port, '/events?topic=orders/1', {
      Authorization: `Bearer ${jwt}`,
    })
    const answer = parseRaw(raw)
    expect(answer.status).toBe(status)
    expect(answer.headers.get('content-type')).toBe('text/plain; charset=utf-8')
    expect(answer.headers.get('www-authenticate')).toBe('Bearer')
    expect(answer.body).toBe('Unauthorized\n')
    expect(raw).not.toContain('text/event-stream')
    expect(hub.subscribers()).toBe(0)
    expect(failures).toEqual([])
  })

  test('no token gets 401; a token granting none of the requested topics gets 403', async () => {
    const { server, failures } = await start()
    const none = parseRaw(await rawGet(server.port, '/events?topic=orders/1', {}))
    expect([none.status, none.body]).toEqual([401, 'Unauthorized\n'])
    const jwt = await token({ sub: 'alice', topics: ['orders/*', 'user/{sub}/**'] })
    const raw = await rawGet(server.port, '/events?topic=admin/log&topic=user/bob/inbox', {
      Authorization: `Bearer ${jwt}`,
    })
    const forbidden = parseRaw(raw)
    expect([forbidden.status, forbidden.body]).toEqual([403, 'Forbidden\n'])
    expect(forbidden.headers.has('www-authenticate')).toBe(false)
    expect(raw).not.toContain('text/event-stream')
    expect(failures).toEqual([])
  })

  test('a hook that throws is an error (500), not a refusal', async () => {
    const { server, failures } = await start({ broken: 'throws' })
    const answer = parseRaw(await rawGet(server.port, '/events?topic=orders/1', {}))
    expect(answer.status).toBe(500)
    expect(failures).toHaveLength(1)
    expect((failures[0] as Error).message).toBe('key server unreachable')
  })

  test('a hook that never settles fails after authorizeTimeout with ERR_SSE_TIMEOUT (500)', async () => {
    const { server, failures } = await start({ broken: 'hangs', authorizeTimeout: 100 })
    const answer = parseRaw(await rawGet(server.port, '/events?topic=orders/1', {}))
    expect(answer.status).toBe(500)
    expect(failures).toHaveLength(1)
    expect(isSseError(failures[0]) && failures[0].code).toBe('ERR_SSE_TIMEOUT')
    expect((failures[0] as Error).message).toBe(
      'Broadcaster authorize(request, topics) did not settle within 100 ms (the authorizeTimeout ' +
        'option): the subscription was not opened.',
    )
  })

  test('a resumed subscriber gets the history of its granted topics only', async () => {
    const { hub, server, failures } = await start()
    const jwt = await token({ sub: 'alice', topics: ['orders/*', 'user/{sub}/**'] })
    const from = await hub.publish('orders/0', 'before')
    for (const topic of [
      'orders/1',
      'admin/log',
      'user/bob/inbox',
      'user/alice/inbox',
      'orders/2',
    ]) {
      await hub.publish(topic, topic)
    }
    const headers = { Authorization: `Bearer ${jwt}` }
    // Topics: the refused ones are narrowed away before the history is read.
    const topics = await readEvents(
      `${server.url}/events?topic=orders/1&topic=admin/log&topic=user/bob/inbox&topic=orders/2`,
      { count: 2, timeout: 10_000, headers, lastEventId: from },
    )
    expect(topics.map((event) => event.data)).toEqual(['orders/1', 'orders/2'])
    // Patterns: the history of every topic they match, that the grants admit.
    const patterns = await readEvents(`${server.url}/events?topic=**&topic=user/alice/**`, {
      count: 3,
      timeout: 10_000,
      headers,
      lastEventId: from,
    })
    expect(patterns.map((event) => event.data)).toEqual([
      'orders/1',
      'user/alice/inbox',
      'orders/2',
    ])
    expect(failures).toEqual([])
  })
})
