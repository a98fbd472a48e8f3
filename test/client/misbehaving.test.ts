/**
 * The client against servers that misbehave, each a real `node:http` server on 127.0.0.1
 * written by hand to fail one way: a proxy that buffers and re-cuts the stream, a 200 that is an
 * HTML page, a connection cut in the middle of an event, a server that never sends a byte, a 401
 * until the token is fresh, a 503 with `Retry-After`, a garbage `retry:`, an endless event.
 * Delays are injected short (`retryDelay`, `jitter: 0`, `shortDurations`) rather than waited out.
 */

import { request as httpRequest } from 'node:http'
import { afterEach, describe, expect, test } from 'vitest'
import { type ConnectFailure, connect, isSseError } from '../../src/client.ts'
import { sendEventStream } from '../../src/node.ts'
import { shortDurations } from '../../src/testing.ts'
import { reservePort } from '../helpers/redis.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { idsAndData, readAll, recordingServer, SSE_HEAD } from './support.ts'

afterEach(closeAllServers)

describe('a proxy that buffers', () => {
  /**
   * Oven behind a proxy that holds what it reads and passes it on in fixed 700-byte pieces (the
   * last on the upstream's end): events arrive late and cut anywhere — inside a line, inside a
   * multi-byte character. 200 events, each with a 4-byte emoji and a line break in its data.
   */
  test('events cut anywhere by a re-chunking proxy all arrive whole, in order', async () => {
    const upstream = await nodeServer((req, res) => {
      void sendEventStream(req, res, async function* () {
        for (let i = 1; i <= 200; i++) yield { id: String(i), data: `🦄 ${i}\nsecond line ${i}` }
        yield { event: 'oven-end', data: '' }
      })
    })
    const proxy = await nodeServer((req, res) => {
      const forward = httpRequest(`${upstream.url}${req.url}`, { headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers)
        let held = Buffer.alloc(0)
        up.on('data', (chunk: Buffer) => {
          held = Buffer.concat([held, chunk])
          while (held.length >= 700) {
            res.write(held.subarray(0, 700))
            held = held.subarray(700)
          }
        })
        up.on('end', () => res.end(held))
      })
      forward.end()
    })
    const events = await readAll(connect(proxy.url))
    const expected = Array.from(
      { length: 200 },
      (_, k) => `${k + 1}:🦄 ${k + 1}\nsecond line ${k + 1}`,
    )
    expect(idsAndData(events)).toEqual([...expected, ':'])
  })

  test('a proxy that holds the whole body back is caught by the idle timeout and retried', async () => {
    // The first answer is what a buffering proxy in front of an endless stream sends: the
    // headers, then nothing (it waits for the body to end before forwarding it). The retry is
    // answered in full.
    const server = await recordingServer((_req, res, _request, index) => {
      if (index === 0) {
        res.writeHead(200, SSE_HEAD).flushHeaders()
        return
      }
      res.writeHead(200, SSE_HEAD).end('id: 1\ndata: through\n\nevent: oven-end\ndata:\n\n')
    })
    const failures: ConnectFailure[] = []
    const stream = connect(
      server.url,
      shortDurations({
        idleTimeout: 150,
        retryDelay: 1,
        jitter: 0,
        onReconnecting: (failure: ConnectFailure) => failures.push(failure),
      }),
    )
    const events = await readAll(stream)
    expect(idsAndData(events)).toEqual(['1:through', ':'])
    expect(failures.map((f) => [f.kind, f.error.code])).toEqual([['idle', 'ERR_SSE_TIMEOUT']])
    expect(failures[0]!.error.message).toMatch(/Nothing arrived .* for 150 ms/)
  })
})

test('a 200 with text/html is a clear error at once, with no retry loop', async () => {
  const server = await recordingServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<h1>Please log in</h1>')
  })
  const stream = connect(`${server.url}/events`, { retryDelay: 1 })
  const failure = await readAll(stream).then(
    () => undefined,
    (error: unknown) => error,
  )
  expect(isSseError(failure)).toBe(true)
  expect(failure).toMatchObject({ code: 'ERR_SSE_RESPONSE' })
  expect((failure as Error).message).toBe(
    `${server.url}/events answered 200 with content-type string "text/html; charset=utf-8", ` +
      `expected "text/event-stream": not an event stream (a login page, a proxy's error page, ` +
      `a wrong URL?); not retried.`,
  )
  expect(await stream.closed).toMatchObject({ reason: 'error', error: failure })
  expect(server.requests).toHaveLength(1)
})

describe('a connection cut in the middle of an event', () => {
  test('the half event is never delivered; the reconnect resumes after the last complete one', async () => {
    const server = await recordingServer((req, res, request, index) => {
      res.writeHead(200, SSE_HEAD)
      if (index === 0) {
        // Cut inside the second event's data, and inside a character (the first 2 bytes of 🦄).
        res.write('retry: 1\nid: 1\ndata: one\n\nid: 2\ndata: two line a\ndata: tw')
        res.write(Buffer.from('🦄').subarray(0, 2), () => req.socket.destroy())
        return
      }
      expect(request.headers['last-event-id']).toBe('1')
      res.end('id: 2\ndata: two line a\ndata: two 🦄\n\nid: 3\nevent: oven-end\ndata:\n\n')
    })
    const failures: string[] = []
    const events = await readAll(
      connect(server.url, { jitter: 0, onReconnecting: (failure) => failures.push(failure.kind) }),
    )
    expect(idsAndData(events)).toEqual(['1:one', '2:two line a\ntwo 🦄', '3:'])
    expect(failures).toEqual(['network'])
    expect(server.requests.map((r) => r.headers['last-event-id'])).toEqual([undefined, '1'])
  })

  test('a clean end in the middle of an event drops the half event too (HTML spec)', async () => {
    const server = await recordingServer((_req, res, _request, index) => {
      res.writeHead(200, SSE_HEAD)
      if (index === 0) res.end('retry: 1\nid: 1\ndata: one\n\nid: 2\ndata: half')
      else res.end('id: 2\ndata: whole\n\nevent: oven-end\ndata:\n\n')
    })
    const failures: string[] = []
    const events = await readAll(
      connect(server.url, { jitter: 0, onReconnecting: (failure) => failures.push(failure.kind) }),
    )
    expect(idsAndData(events)).toEqual(['1:one', '2:whole', ':'])
    expect(failures).toEqual(['ended'])
    expect(server.requests[1]!.headers['last-event-id']).toBe('1')
  })
})

test('a server that never sends a byte (not even headers) is left after idleTimeout', async () => {
  const server = await recordingServer((_req, res, _request, index) => {
    if (index === 0) return // accepted, then silence
    res.writeHead(200, SSE_HEAD).end('data: at last\n\nevent: oven-end\ndata:\n\n')
  })
  const failures: ConnectFailure[] = []
  const events = await readAll(
    connect(
      server.url,
      shortDurations({
        idleTimeout: 100,
        retryDelay: 1,
        jitter: 0,
        onReconnecting: (failure: ConnectFailure) => failures.push(failure),
      }),
    ),
  )
  expect(events.map((event) => event.data)).toEqual(['at last', ''])
  expect(failures.map((f) => [f.kind, f.status])).toEqual([['idle', undefined]])
})

test('comments (pings) keep an idle stream alive', async () => {
  const server = await recordingServer((req, res) => {
    res.writeHead(200, SSE_HEAD)
    let pings = 0
    const timer = setInterval(() => {
      pings++
      if (pings < 8) res.write(': ping\n\n')
      else res.end('event: oven-end\ndata: after 8 pings\n\n')
    }, 40)
    req.socket.on('close', () => clearInterval(timer))
  })
  const comments: string[] = []
  const failures: string[] = []
  // 40 ms between pings, 8 of them: 320 ms in all, well past the 150 ms idle timeout.
  const events = await readAll(
    connect(
      server.url,
      shortDurations({
        idleTimeout: 150,
        onComment: (comment: string) => comments.push(comment),
        onReconnecting: (failure: ConnectFailure) => failures.push(failure.kind),
      }),
    ),
  )
  expect(events.map((event) => event.data)).toEqual(['after 8 pings'])
  expect(comments).toEqual(Array(7).fill('ping'))
  expect(failures).toEqual([])
})

describe('statuses', () => {
  test('a 401 is not retried by default', async () => {
    const server = await recordingServer((_req, res) => res.writeHead(401).end('no'))
    const stream = connect(server.url, { retryDelay: 1 })
    const info = await stream.closed
    expect(info.reason).toBe('error')
    expect(info.error).toMatchObject({
      code: 'ERR_SSE_RESPONSE',
      message: `${server.url}/ answered status 401 Unauthorized, expected 200.`,
    })
    expect(server.requests).toHaveLength(1)
  })

  test('a 401 that needs a fresh token: shouldRetry refreshes it, the headers function sends it', async () => {
    const server = await recordingServer((_req, res, request) => {
      if (request.headers.authorization !== 'Bearer fresh') return void res.writeHead(401).end()
      res.writeHead(200, SSE_HEAD).end('id: 1\ndata: welcome\n\nevent: oven-end\ndata:\n\n')
    })
    let token = 'stale'
    const seen: [number | undefined, number | undefined][] = []
    const events = await readAll(
      connect(server.url, {
        headers: () => ({ authorization: `Bearer ${token}` }),
        shouldRetry: async (failure) => {
          seen.push([failure.status, failure.delay])
          if (failure.status !== 401) return failure.delay !== undefined
          token = 'fresh' // e.g. await refreshToken()
          return 0
        },
      }),
    )
    expect(events.map((event) => event.data)).toEqual(['welcome', ''])
    // The default decision for a 401 is "give up" (no delay); the hook overrode it once.
    expect(seen).toEqual([[401, undefined]])
    expect(server.requests.map((r) => r.headers.authorization)).toEqual([
      'Bearer stale',
      'Bearer fresh',
    ])
  })

  test('a 503 with Retry-After is retried after what it asks, not the backoff', async () => {
    const server = await recordingServer((_req, res, _request, index) => {
      if (index === 0) return void res.writeHead(503, { 'retry-after': '1' }).end('busy')
      res.writeHead(200, SSE_HEAD).end('data: in\n\nevent: oven-end\ndata:\n\n')
    })
    const delays: [number | undefined, number][] = []
    const started = Date.now()
    // The backoff alone would wait a minute; Retry-After says one second.
    const events = await readAll(
      connect(server.url, {
        retryDelay: 60_000,
        maxRetryDelay: 60_000,
        onReconnecting: (failure) => delays.push([failure.status, failure.delay]),
      }),
    )
    expect(events.map((event) => event.data)).toEqual(['in', ''])
    expect(delays).toEqual([[503, 1000]])
    expect(Date.now() - started).toBeGreaterThanOrEqual(990)
  })

  test('429 and 5xx are retried with backoff (doubling, capped); a 404 ends at once', async () => {
    const statuses = [500, 429, 502, 504, 503]
    const server = await recordingServer((_req, res, request, index) => {
      if (request.path === '/missing') return void res.writeHead(404).end()
      if (index < statuses.length) return void res.writeHead(statuses[index]!).end()
      res.writeHead(200, SSE_HEAD).end('event: oven-end\ndata: ok\n\n')
    })
    const delays: number[] = []
    await readAll(
      connect(server.url, {
        retryDelay: 2,
        maxRetryDelay: 10,
        jitter: 0,
        onReconnecting: (failure) => delays.push(failure.delay),
      }),
    )
    expect(delays).toEqual([2, 4, 8, 10, 10])
    const missing = connect(`${server.url}/missing`)
    expect((await missing.closed).error).toMatchObject({ code: 'ERR_SSE_RESPONSE' })
    expect(server.requests.filter((r) => r.path === '/missing')).toHaveLength(1)
  })

  test('a 204 ends the stream for good (HTML spec), after a stream that had events', async () => {
    const server = await recordingServer((_req, res, _request, index) => {
      if (index === 0)
        return void res.writeHead(200, SSE_HEAD).end('id: p-100\nevent: progress\ndata: 100%\n\n')
      res.writeHead(204).end()
    })
    const stream = connect(server.url, { retryDelay: 1 })
    const events = await readAll(stream)
    expect(events).toEqual([{ event: 'progress', data: '100%', id: 'p-100', lastEventId: 'p-100' }])
    expect(await stream.closed).toEqual({ reason: 'no-content', lastEventId: 'p-100' })
    expect(server.requests).toHaveLength(2)
  })
})

test('a garbage retry: is ignored (HTML spec); a valid one replaces retryDelay', async () => {
  const server = await recordingServer((_req, res, _request, index) => {
    res.writeHead(200, SSE_HEAD)
    if (index === 0) res.end('retry: soon\nretry: -5\nretry: 1.5\ndata: a\n\n')
    else if (index === 1) res.end('retry: 7\ndata: b\n\n')
    else res.end('event: oven-end\ndata: c\n\n')
  })
  const delays: number[] = []
  const events = await readAll(
    connect(server.url, { retryDelay: 3, jitter: 0, onReconnecting: (f) => delays.push(f.delay) }),
  )
  expect(events.map((event) => event.data)).toEqual(['a', 'b', 'c'])
  expect(delays).toEqual([3, 7])
})

test('connection refused: retried up to maxRetries, then the last error', async () => {
  // A port of the reserved range: nothing listens there, and nothing can start to meanwhile (a
  // port freed by closing a server could be taken by another worker's listen(0) in between).
  const { port, release } = await reservePort()
  const url = `http://127.0.0.1:${port}/`
  const failures: [string, number][] = []
  const stream = connect(url, {
    retryDelay: 1,
    jitter: 0,
    maxRetries: 3,
    onReconnecting: (failure) => failures.push([failure.kind, failure.attempt]),
  })
  const info = await stream.closed.finally(release)
  expect(failures).toEqual([
    ['network', 1],
    ['network', 2],
    ['network', 3],
  ])
  expect(info.reason).toBe('error')
  expect(info.error).toMatchObject({ code: 'ERR_SSE_CONNECTION' })
  expect((info.error as Error).message).toMatch(
    /^Could not connect to http:\/\/127\.0\.0\.1:\d+\/: /,
  )
})

test('an event longer than maxEventSize fails the stream without a retry', async () => {
  const server = await recordingServer((_req, res) => {
    res.writeHead(200, SSE_HEAD)
    res.write('data: small\n\n')
    res.write(`data: ${'x'.repeat(5000)}`)
  })
  const received: string[] = []
  const stream = connect(server.url, { maxEventSize: 1000, onEvent: (e) => received.push(e.data) })
  const info = await stream.closed
  expect(received).toEqual(['small'])
  expect(info.error).toMatchObject({ code: 'ERR_SSE_RESPONSE' })
  expect((info.error as Error).message).toMatch(
    /exceeded 1000 characters \(option "maxEventSize"\)/,
  )
  expect(server.requests).toHaveLength(1)
})

test('a callback that throws ends the stream with its error; nothing reconnects', async () => {
  const server = await recordingServer((_req, res) => {
    res.writeHead(200, SSE_HEAD).end('id: 1\ndata: a\n\nid: 2\ndata: b\n\n')
  })
  const boom = new Error('render failed')
  const stream = connect(server.url, {
    retryDelay: 1,
    onEvent: (event) => {
      if (event.data === 'a') throw boom
    },
  })
  expect(await stream.closed).toEqual({ reason: 'error', error: boom, lastEventId: '1' })
  expect(server.requests).toHaveLength(1)
})

test('shouldRetry: a number is the delay; a bad answer is a clear error', async () => {
  const server = await recordingServer((_req, res, request, index) => {
    if (index < 2 || request.path === '/always-500') return void res.writeHead(500).end()
    res.writeHead(200, SSE_HEAD).end('event: oven-end\ndata:\n\n')
  })
  const delays: number[] = []
  await readAll(
    connect(server.url, { shouldRetry: () => 3, onReconnecting: (f) => delays.push(f.delay) }),
  )
  expect(delays).toEqual([3, 3])
  const bad = connect(`${server.url}/always-500`, { shouldRetry: () => -1 as never })
  const info = await bad.closed
  expect(bad.state).toBe('closed')
  expect(info.error).toMatchObject({ code: 'ERR_SSE_INVALID_OPTION' })
  expect((info.error as Error).message).toBe(
    'Invalid return value of "shouldRetry": expected true, false or a whole number of ' +
      'milliseconds from 0 to 2147483647, received number -1.',
  )
})
