/**
 * The client against Oven's own servers, over real sockets: the node transport
 * (`sendEventStream`) and the web one (`EventSourceResponse` under `@hono/node-server`), the same
 * scenarios for both. Then what the client is for on top of them: a run that ends with
 * `oven-end` is not restarted, and a broadcast topic resumes after a "page reload" (a new
 * client given the saved position) without a gap or a duplicate.
 */

import type { IncomingMessage } from 'node:http'
import { afterEach, describe, expect, test } from 'vitest'
import { connect } from '../../src/client.ts'
import {
  Broadcaster,
  type Content,
  EventSourceResponse,
  RESET_EVENT,
  Runs,
  type StreamContext,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { closeAllServers, nodeServer, webServer } from '../helpers/servers.ts'
import { gate } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'
import { runsServer } from '../runs/runs-server.ts'
import { idsAndData, readAll } from './support.ts'

afterEach(closeAllServers)

/** What a scenario serves: content from the request's method, body, headers and position. */
type Serve = (request: { method: string; body: string; headers: Headers }) => Content<unknown>

/** Starts a server of transport `kind` whose streams come from `serve`. */
async function serveWith(kind: 'node' | 'web', serve: Serve): Promise<string> {
  if (kind === 'node') {
    const server = await nodeServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const headers = new Headers()
        for (const [name, value] of Object.entries(req.headers)) {
          if (typeof value === 'string') headers.set(name, value)
        }
        const content = serve({
          method: req.method ?? '',
          body: Buffer.concat(chunks).toString('utf8'),
          headers,
        }) as Content<IncomingMessage>
        void sendEventStream(req, res, content)
      })
    })
    return server.url
  }
  const server = await webServer(async (request) => {
    const body = await request.text()
    const content = serve({ method: request.method, body, headers: request.headers })
    return new EventSourceResponse(content as Content<Request | undefined>, { request })
  })
  return server.url
}

describe.each(['node', 'web'] as const)('against the %s transport', (kind) => {
  test('events arrive in order with their type, id and multi-line data; unicode intact', async () => {
    const url = await serveWith(kind, () => [
      { id: '1', data: 'plain' },
      { id: '2', event: 'update', data: { a: 1 } },
      { id: '3', data: 'line one\nline two\r\nline three' },
      { data: '🦄 are cool. 🐾 in the snow. Espen ♥ Kokos' },
      { id: '4', event: 'oven-end', data: '{"reason":"done"}' },
    ])
    const events = await readAll(connect(url))
    expect(events).toEqual([
      { event: 'message', data: 'plain', id: '1', lastEventId: '1' },
      { event: 'update', data: '{"a":1}', id: '2', lastEventId: '2' },
      { event: 'message', data: 'line one\nline two\nline three', id: '3', lastEventId: '3' },
      // No id of its own: the position stays at the last id, as MessageEvent.lastEventId.
      {
        event: 'message',
        data: '🦄 are cool. 🐾 in the snow. Espen ♥ Kokos',
        id: undefined,
        lastEventId: '3',
      },
      { event: 'oven-end', data: '{"reason":"done"}', id: '4', lastEventId: '4' },
    ])
  })

  test('a stream the server ends is resumed with Last-Event-ID, after the retry it sent', async () => {
    const seen: (string | null)[] = []
    const url = await serveWith(kind, ({ headers }) => {
      const from = Number(headers.get('last-event-id') ?? 0)
      seen.push(headers.get('last-event-id'))
      return (async function* () {
        if (from === 0) yield { retry: 20 }
        for (let i = from + 1; i <= Math.min(from + 2, 6); i++)
          yield { id: String(i), data: `e${i}` }
        if (from + 2 >= 6) yield { event: 'oven-end', data: '{}' }
      })()
    })
    const delays: number[] = []
    const stream = connect(url, {
      // The server's retry (20 ms) replaces this first delay.
      retryDelay: 60_000,
      maxRetryDelay: 60_000,
      jitter: 0,
      onReconnecting: ({ delay, kind: why }) => delays.push(why === 'ended' ? delay : -1),
    })
    const events = await readAll(stream)
    expect(idsAndData(events)).toEqual(['1:e1', '2:e2', '3:e3', '4:e4', '5:e5', '6:e6', ':{}'])
    expect(seen).toEqual([null, '2', '4'])
    // Each connection delivered events, so the backoff never grew past the server's retry.
    expect(delays).toEqual([20, 20])
  })

  test('POST with a body and headers from a function called on every connection', async () => {
    const requests: { method: string; body: string; auth: string | null; id: string | null }[] = []
    const url = await serveWith(kind, ({ method, body, headers }) => {
      requests.push({
        method,
        body,
        auth: headers.get('authorization'),
        id: headers.get('last-event-id'),
      })
      const n = requests.length
      return n < 3
        ? [{ id: String(n), data: `from ${n}` }]
        : [{ id: String(n), event: 'oven-end', data: '' }]
    })
    let token = 0
    const calls: { attempt: number; lastEventId: string }[] = []
    const stream = connect(url, {
      method: 'POST',
      body: JSON.stringify({ prompt: 'hi' }),
      headers: async (info) => {
        calls.push(info)
        token++
        return { authorization: `Bearer t${token}`, 'last-event-id': 'ignored' }
      },
      retryDelay: 1,
      jitter: 0,
    })
    await readAll(stream)
    expect(requests).toEqual([
      { method: 'POST', body: '{"prompt":"hi"}', auth: 'Bearer t1', id: null },
      { method: 'POST', body: '{"prompt":"hi"}', auth: 'Bearer t2', id: '1' },
      { method: 'POST', body: '{"prompt":"hi"}', auth: 'Bearer t3', id: '2' },
    ])
    expect(calls).toEqual([
      { attempt: 0, lastEventId: '' },
      { attempt: 1, lastEventId: '1' },
      { attempt: 2, lastEventId: '2' },
    ])
  })

  test('the starting position is sent on the first connection; callbacks and the iterator both see each event', async () => {
    const url = await serveWith(kind, ({ headers }) => {
      const from = Number(headers.get('last-event-id') ?? 0)
      return [
        { id: String(from + 1), event: 'tick', data: 'a' },
        { id: String(from + 2), data: 'b' },
        { event: 'oven-end', data: '' },
      ]
    })
    const order: string[] = []
    const stream = connect(url, {
      lastEventId: '41',
      onEvent: (event) => order.push(`onEvent ${event.id}`),
      on: { tick: (event) => order.push(`on.tick ${event.id}`) },
    })
    for await (const event of stream) order.push(`iterator ${event.id}`)
    // Callbacks run as each event is parsed; the iterator takes its copy after them.
    expect(order.filter((line) => !line.startsWith('iterator'))).toEqual([
      'onEvent 42',
      'on.tick 42',
      'onEvent 43',
      'onEvent undefined',
    ])
    expect(order.filter((line) => line.startsWith('iterator'))).toEqual([
      'iterator 42',
      'iterator 43',
      'iterator undefined',
    ])
    expect(order.indexOf('iterator 42')).toBeGreaterThan(order.indexOf('on.tick 42'))
    expect(stream.lastEventId).toBe('43')
    expect(await stream.closed).toEqual({ reason: 'end-event', lastEventId: '43' })
  })

  test('close() and the signal end the stream at once; the server sees the disconnect', async () => {
    let open = 0
    const url = await serveWith(
      kind,
      () =>
        async function* ({ signal }: StreamContext<unknown>) {
          open++
          try {
            yield { id: '1', data: 'first' }
            await new Promise((resolve) =>
              signal.addEventListener('abort', resolve, { once: true }),
            )
          } finally {
            open--
          }
        },
    )
    const controller = new AbortController()
    const first = connect(url, { signal: controller.signal })
    const iterator = first[Symbol.asyncIterator]()
    expect((await iterator.next()).value?.data).toBe('first')
    controller.abort()
    expect(await iterator.next()).toEqual({ done: true, value: undefined })
    expect(await first.closed).toEqual({ reason: 'aborted', lastEventId: '1' })
    expect(first.state).toBe('closed')
    await waitFor('the server to see the first client go', () => open, { until: (n) => n === 0 })

    const second = connect(url)
    for await (const event of second) {
      expect(event.data).toBe('first')
      break // leaving the loop closes the stream
    }
    expect((await second.closed).reason).toBe('aborted')
    await waitFor('the server to see the second client go', () => open, { until: (n) => n === 0 })
  })
})

test('a run is followed to its end and not restarted: oven-end closes the client for good', async () => {
  const runs = new Runs()
  const server = await runsServer(runs)
  const release = gate()
  await runs.start('gen-1', async function* () {
    yield { data: 'token 1' }
    yield { data: 'token 2' }
    await release.promise
    yield { data: 'token 3' }
  })
  const received: string[] = []
  const stream = connect(server.attachUrl('gen-1'), {
    onEvent: (event) => {
      received.push(`${event.event}:${event.data}`)
      if (received.length === 2) release.open()
    },
  })
  const info = await stream.closed
  expect(info.reason).toBe('end-event')
  expect(received).toEqual([
    'message:token 1',
    'message:token 2',
    'message:token 3',
    'oven-end:{"reason":"done"}',
  ])
  // A page reload with the saved position: the run is over, the reader is told so at once.
  const again = await readAll(connect(server.attachUrl('gen-1'), { lastEventId: info.lastEventId }))
  expect(again.map((event) => `${event.event}:${event.data}`)).toEqual([
    'oven-end:{"reason":"done"}',
  ])
  expect(server.errors).toEqual([])
  await runs.close()
})

test('a broadcast topic resumes across a "page reload" from the saved position, no gap, no duplicate', async () => {
  const hub = new Broadcaster()
  const server = await nodeServer((req, res) => {
    void sendEventStream(req, res, (ctx) => hub.subscribe(['news'], ctx))
  })
  // The application keeps the position where it likes; here, a Map standing in for sessionStorage.
  const storage = new Map<string, string>()
  const firstPage: string[] = []
  const first = connect(server.url, {
    onEvent: (event) => {
      firstPage.push(event.data)
      storage.set('news-position', event.lastEventId)
    },
  })
  await waitFor('the first page to subscribe', () => hub.subscribers('news'), {
    until: (n) => n === 1,
  })
  for (let i = 1; i <= 3; i++) await hub.publish('news', `n${i}`)
  await waitFor('the first page to show 3 items', () => firstPage.length, { until: (n) => n === 3 })
  first.close() // the page goes away
  for (let i = 4; i <= 6; i++) await hub.publish('news', `n${i}`) // published while it was gone

  const secondPage: string[] = []
  const second = connect(server.url, {
    lastEventId: storage.get('news-position')!,
    onEvent: (event) => secondPage.push(event.data),
  })
  await waitFor('the reloaded page to catch up', () => secondPage.length, { until: (n) => n === 3 })
  await hub.publish('news', 'n7')
  await waitFor('the live event', () => secondPage.length, { until: (n) => n === 4 })
  expect(firstPage).toEqual(['n1', 'n2', 'n3'])
  expect(secondPage).toEqual(['n4', 'n5', 'n6', 'n7'])
  second.close()

  // A position the broadcaster never issued: the client delivers the reset event, and the
  // stream carries on live from there.
  const reset = connect(server.url, { lastEventId: 'not-a-position' })
  const iterator = reset[Symbol.asyncIterator]()
  const resetEvent = (await iterator.next()).value!
  expect(resetEvent.event).toBe(RESET_EVENT)
  expect(JSON.parse(resetEvent.data)).toEqual({ reason: 'invalid', topics: ['news'] })
  reset.close()
  await hub.close()
})
