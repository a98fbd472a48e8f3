/**
 * Every option of the DESIGN.md table, each with a test that fails if the option is ignored.
 */

import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, test, vi } from 'vitest'
import {
  type CloseReason,
  createChannel,
  type EventInit,
  EventSourceResponse,
  ServerSentEvent,
  type StreamOptions,
  StreamRegistry,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { keepAlive } from '../../src/stream/keepalive.ts'
import { iterateMessages, readEvents, readMessages, shortDurations } from '../../src/testing.ts'
import { closeAllServers, nodeServer, webServer } from '../helpers/servers.ts'
import {
  afterOpening,
  collectFor,
  OPENING_FRAME,
  OPENING_MESSAGE,
  sleepUnlessAborted,
  untilAborted,
} from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'

afterEach(closeAllServers)

type Source = Parameters<typeof sendEventStream>[2]

/** Serves `source` with `options` through both transports; returns both URLs. */
async function both(source: () => Source, options: () => StreamOptions = () => ({})) {
  const node = await nodeServer((req, res) => {
    void sendEventStream(req, res, source(), options())
  })
  const web = await webServer(
    (request) => new EventSourceResponse(source() as never, { ...(options() as object), request }),
  )
  return [node.url, web.url]
}

/** A source that yields `items`, then waits until the stream ends. */
function thenIdle(items: EventInit[] = []) {
  return async function* ({ signal }: { signal: AbortSignal }) {
    yield* items
    await untilAborted(signal)
  }
}

describe('status', () => {
  test('is sent', async () => {
    for (const url of await both(
      () => ['x'],
      () => ({ status: 201 }),
    )) {
      const response = await fetch(url)
      expect(response.status).toBe(201)
      await response.text()
    }
  })
  test('is checked at once', () => {
    expect(() => new EventSourceResponse([], { status: 204 })).toThrow(/"status".*number 204/)
    expect(() => new EventSourceResponse([], { status: 99.5 })).toThrow(/"status"/)
  })
})

describe('headers', () => {
  test("extra headers are sent; Cache-Control may be replaced; framing headers stay Oven's", async () => {
    const headers = {
      'X-Custom': 'yes',
      'Cache-Control': 'no-cache',
      'Content-Type': 'text/plain',
      'Content-Length': '5',
      'Set-Cookie': ['a=1', 'b=2'],
    }
    for (const url of await both(
      () => ['x'],
      () => ({ headers }),
    )) {
      const response = await fetch(url)
      expect(response.headers.get('x-custom')).toBe('yes')
      expect(response.headers.get('cache-control')).toBe('no-cache')
      expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
      expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2'])
      expect(await response.text()).toBe(`${OPENING_FRAME}data: x\r\n\r\n`)
    }
  })

  test('Node: an HTTP/1.0 client gets Connection: close, and the stream ends with the connection', async () => {
    // HTTP/1.0 has no chunked framing: the end of the body is the end of the connection, so
    // promising keep-alive would be false. The Node transport sets Connection itself; on the
    // web path the server frames the response (@hono/node-server counts a short body's length).
    const server = await nodeServer((req, res) => {
      void sendEventStream(req, res, ['x'])
    })
    {
      const socket = connect(server.port, '127.0.0.1')
      let received = ''
      socket.on('data', (chunk) => {
        received += String(chunk)
      })
      const ended = new Promise<void>((resolve) => socket.once('end', resolve))
      socket.write('GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n')
      await ended
      socket.destroy()
      expect(received).toMatch(/^HTTP\/1\.1 200 /)
      const head = received.slice(0, received.indexOf('\r\n\r\n')).toLowerCase()
      expect(head).toContain('connection: close')
      expect(head).not.toContain('transfer-encoding')
      expect(received.endsWith(`${OPENING_FRAME}data: x\r\n\r\n`)).toBe(true)
    }
  })

  test('defaults', async () => {
    const [nodeUrl, webUrl] = await both(() => ['x'])
    for (const url of [nodeUrl!, webUrl!]) {
      const response = await fetch(url)
      expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
      expect(response.headers.get('cache-control')).toBe('no-store, no-transform')
      expect(response.headers.get('x-accel-buffering')).toBe('no')
      await response.text()
    }
    // Node on HTTP/1.1: chunked framing chosen by the server, Connection said explicitly.
    const response = await fetch(nodeUrl!)
    expect(response.headers.get('connection')).toBe('keep-alive')
    expect(response.headers.get('transfer-encoding')).toBe('chunked')
    await response.text()
  })

  test('accepts a Headers object and a list of pairs', async () => {
    const fromHeaders = new EventSourceResponse([], { headers: new Headers({ 'x-a': '1' }) })
    expect(fromHeaders.headers.get('x-a')).toBe('1')
    const fromPairs = new EventSourceResponse([], { headers: [['x-b', '2']] })
    expect(fromPairs.headers.get('x-b')).toBe('2')
    expect(() => new EventSourceResponse([], { headers: 'x' as never })).toThrow(/"headers"/)
  })
})

describe('ping', () => {
  test('an idle stream pings with a timestamped comment', async () => {
    for (const url of await both(thenIdle, () => shortDurations({ ping: 40 }))) {
      // Counted, not timed: the test waits for three pings however loaded the machine is.
      const pings = afterOpening(await readMessages(url, { count: 4, timeout: 10_000 }))
      expect(pings).toHaveLength(3)
      for (const ping of pings) {
        expect(ping).toMatchObject({
          type: 'comment',
          comment: expect.stringMatching(/^ping - \d{4}-\d\d-\d\dT[\d:.]+Z$/),
        })
      }
    }
  })

  test('a busy stream does not ping', async () => {
    // Events every 5 ms against a 1 s ping: only an event-loop stall of a whole second could
    // let a ping through, so a loaded machine cannot make this fail by accident.
    const busy = async function* ({ signal }: { signal: AbortSignal }) {
      for (let i = 0; i < 400 && !signal.aborted; i++) {
        yield { data: String(i) }
        await sleep(5)
      }
    }
    for (const url of await both(
      () => busy,
      () => ({ ping: 1000 }),
    )) {
      const messages = await collectFor(url, 1500)
      expect(messages.filter((m) => m.type === 'event').length).toBeGreaterThan(20)
      expect(messages.filter((m) => m.type === 'comment')).toEqual([OPENING_MESSAGE])
    }
  })

  test.each([0, false] as const)('ping %s disables pings', async (ping) => {
    // A window without pings alone cannot tell "disabled" from the default 15 s interval: the
    // proof is that no ping is scheduled for the open stream. The control, a stream with the
    // default ping, shows that the count sees one.
    const scheduledWhileOpen = async (url: string) => {
      const controller = new AbortController()
      const messages = iterateMessages(url, { signal: controller.signal, timeout: 10_000 })
      expect((await messages.next()).value).toEqual(OPENING_MESSAGE)
      const scheduled = keepAlive.size
      controller.abort()
      await messages.return(undefined)
      return scheduled
    }
    const empty = { until: (size: number) => size === 0 }
    await waitFor("earlier tests' streams to leave the scheduler", () => keepAlive.size, empty)
    const [control] = await both(thenIdle)
    expect(await scheduledWhileOpen(control!)).toBe(1)
    await waitFor('the control stream to leave the scheduler', () => keepAlive.size, empty)
    for (const url of await both(thenIdle, () => ({ ping }))) {
      expect(await scheduledWhileOpen(url)).toBe(0)
      expect(await collectFor(url, 250)).toEqual([OPENING_MESSAGE])
    }
  })

  test('is checked at once', () => {
    expect(() => new EventSourceResponse([], { ping: -1 })).toThrow(/"ping".*number -1/)
    expect(() => new EventSourceResponse([], { ping: true as never })).toThrow(/"ping"/)
  })
})

describe('pingMessage', () => {
  test.each([
    [
      'an event object',
      () => ({ event: 'ping', data: 'tick' }),
      { type: 'event', event: 'ping', data: 'tick' },
    ],
    ['a string', () => 'tick', { type: 'event', data: 'tick' }],
    [
      'a ServerSentEvent',
      () => new ServerSentEvent({ comment: 'custom ping' }),
      { type: 'comment', comment: 'custom ping' },
    ],
  ])('may return %s', async (_kind, pingMessage, expected) => {
    for (const url of await both(thenIdle, () => shortDurations({ ping: 40, pingMessage }))) {
      const messages = afterOpening(await readMessages(url, { count: 3, timeout: 10_000 }))
      expect(messages[0]).toMatchObject(expected)
      expect(messages[1]).toMatchObject(expected)
    }
  })
})

describe('sep', () => {
  test.each(['\n', '\r\n'] as const)('%j separates every line', async (sep) => {
    for (const url of await both(
      () => [{ data: 'a\nb', id: '1' }],
      () => ({ sep, retry: 10 }),
    )) {
      const text = await (await fetch(url)).text()
      expect(text).toBe(
        `: ok${sep}${sep}retry: 10${sep}${sep}id: 1${sep}data: a${sep}data: b${sep}${sep}`,
      )
    }
  })
  test('is checked at once', () => {
    expect(() => new EventSourceResponse([], { sep: '\n\n' as never })).toThrow(/"sep"/)
  })
})

describe('retry', () => {
  test('is sent once, before any event', async () => {
    for (const url of await both(
      () => ['a', 'b'],
      () => ({ retry: 3000 }),
    )) {
      const messages = afterOpening(await readMessages(url))
      expect(messages.map((m) => m.type)).toEqual(['retry', 'event', 'event'])
      expect(messages[0]).toEqual({ type: 'retry', retry: 3000 })
    }
  })
  test('is checked at once', () => {
    expect(() => new EventSourceResponse([], { retry: 1.5 })).toThrow(/"retry".*number 1\.5/)
  })
})

describe('serialize', () => {
  test('turns non-string data into text', async () => {
    const serialize = (value: unknown) => `custom:${JSON.stringify(value)}`
    for (const url of await both(
      () => [{ data: { a: 1 } }, { data: 'text' }],
      () => ({ serialize }),
    )) {
      const events = await readEvents(url)
      expect(events.map((e) => e.data)).toEqual(['custom:{"a":1}', 'text'])
    }
  })
})

describe('dataSender', () => {
  test("feeds a channel that is the content (the seed's memory channel example)", async () => {
    // Each request makes its channel and a producer bound to it.
    const node = await nodeServer((req, res) => {
      const channel = createChannel<EventInit>(2)
      void sendEventStream(req, res, channel, {
        async dataSender() {
          for (let i = 0; i < 10; i++) await channel.send({ data: `Item ${i}` })
          channel.close()
        },
      })
    })
    const web = await webServer((request) => {
      const channel = createChannel<EventInit>(2)
      return new EventSourceResponse(channel, {
        request,
        async dataSender() {
          for (let i = 0; i < 10; i++) await channel.send({ data: `Item ${i}` })
          channel.close()
        },
      })
    })
    for (const url of [node.url, web.url]) {
      const events = await readEvents(url)
      expect(events.map((e) => e.data)).toEqual(Array.from({ length: 10 }, (_, i) => `Item ${i}`))
    }
  })

  test('is aborted through ctx.signal when the client goes away', async () => {
    let aborted: unknown
    const node = await nodeServer((req, res) => {
      const channel = createChannel<string>(1)
      void sendEventStream(req, res, channel, {
        async dataSender({ signal }) {
          try {
            for (let i = 0; ; i++) {
              await channel.send(String(i))
              await sleepUnlessAborted(10, signal)
            }
          } catch {
            aborted = signal.reason
          }
        },
      })
    })
    await readEvents(node.url, { count: 3 })
    await waitFor('the dataSender to be aborted', () => aborted !== undefined)
    expect(aborted).toBe('disconnect')
  })

  test('an error ends the stream with reason "error" and reaches onError', async () => {
    const errors: unknown[] = []
    const reasons: CloseReason[] = []
    for (const url of await both(thenIdle, () => ({
      dataSender: async () => {
        throw new Error('producer broke')
      },
      onError: (error: unknown) => errors.push(error),
      onClose: (reason: CloseReason) => reasons.push(reason),
    }))) {
      expect(await readEvents(url)).toEqual([])
    }
    expect(errors.map((e) => (e as Error).message)).toEqual(['producer broke', 'producer broke'])
    expect(reasons).toEqual(['error', 'error'])
  })
})

describe('onClose and onError', () => {
  test('onClose is called once with "done"', async () => {
    const reasons: CloseReason[] = []
    for (const url of await both(
      () => ['a'],
      () => ({ onClose: (r: CloseReason) => reasons.push(r) }),
    )) {
      await readEvents(url)
    }
    await waitFor('onClose of both streams', () => reasons.length, { until: (n) => n === 2 })
    expect(reasons).toEqual(['done', 'done'])
  })

  test('a source error reaches onError, the client sees a clean end and no error text', async () => {
    const errors: unknown[] = []
    const failing = async function* () {
      yield 'before'
      throw new Error('secret internal detail')
    }
    for (const url of await both(
      () => failing(),
      () => ({ onError: (e: unknown) => errors.push(e) }),
    )) {
      const text = await (await fetch(url)).text()
      expect(text).toBe(`${OPENING_FRAME}data: before\r\n\r\n`)
    }
    expect(errors).toHaveLength(2)
  })

  test("onError also receives the stream's request", async () => {
    const seen: string[] = []
    const failing = async function* () {
      yield 'before'
      throw new Error('boom')
    }
    const node = await nodeServer((req, res) => {
      void sendEventStream(req, res, failing(), {
        onError: (_error, request) => seen.push(`node ${request.url}`),
      })
    })
    const web = await webServer(
      (request) =>
        new EventSourceResponse(failing(), {
          request,
          onError: (_error, req) => seen.push(`web ${new URL(req!.url).pathname}`),
        }),
    )
    await (await fetch(`${node.url}/n?x=1`)).text()
    await (await fetch(`${web.url}/w`)).text()
    await waitFor('onError of both streams', () => seen.length, { until: (n) => n === 2 })
    expect(seen.sort()).toEqual(['node /n?x=1', 'web /w'])
  })

  test('without onError the error is logged, never thrown', async () => {
    const log = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const node = await nodeServer((req, res) => {
        void sendEventStream(req, res, [{ data: 'ok' }, { bad: 1 } as never])
      })
      expect((await readEvents(node.url)).map((e) => e.data)).toEqual(['ok'])
      await waitFor('the error to be logged', () => log.mock.calls.length)
      expect(String(log.mock.calls[0])).toContain('oven-sse')
      expect(String(log.mock.calls[0]?.[1])).toContain('unknown key "bad"')
    } finally {
      log.mockRestore()
    }
  })

  test('an onClose that throws is reported to onError', async () => {
    const errors: unknown[] = []
    for (const url of await both(
      () => ['a'],
      () => ({
        onClose: () => {
          throw new Error('hook failed')
        },
        onError: (e: unknown) => errors.push(e),
      }),
    )) {
      await readEvents(url)
    }
    await waitFor('both hook failures reported', () => errors.length, { until: (n) => n === 2 })
    expect(errors.map((e) => (e as Error).message)).toEqual(['hook failed', 'hook failed'])
  })
})

describe('registry', () => {
  test('streams join the given registry, not the default one', async () => {
    const registry = new StreamRegistry()
    const node = await nodeServer((req, res) => {
      void sendEventStream(req, res, thenIdle(), { registry })
    })
    const controller = new AbortController()
    const reading = readEvents(node.url, { signal: controller.signal, timeout: 10_000 })
    await waitFor('the stream to join the registry', () => registry.size)
    expect(await registry.closeAll()).toBe(1)
    expect(registry.size).toBe(0)
    expect(await reading).toEqual([])
  })

  test('is checked at once', () => {
    expect(() => new EventSourceResponse([], { registry: {} as never })).toThrow(/"registry"/)
  })
})

describe('one options object for many streams', () => {
  // Streams given the same object share one resolution of it; a change made to it later is
  // checked and takes effect, as if it were a new object.
  test('a change is checked again and takes effect', async () => {
    const options: StreamOptions = shortDurations({ ping: 40 })
    const node = await nodeServer((req, res) => {
      void sendEventStream(req, res, thenIdle(), options)
    })
    expect(await readMessages(node.url, { count: 2, timeout: 10_000 })).toMatchObject([
      OPENING_MESSAGE,
      { type: 'comment', comment: expect.stringMatching(/^ping - /) },
    ])
    options.ping = false
    expect(await collectFor(node.url, 250)).toEqual([OPENING_MESSAGE])
    const call = () => sendEventStream({} as never, {} as never, [], options)
    options.ping = -1
    expect(call).toThrow(/"ping".*number -1/)
    options.ping = false
    Object.assign(options, { sendTimout: 5 })
    expect(call).toThrow(/Unknown option "sendTimout"/)
  })
})

describe('unknown options', () => {
  test('a typo is named', () => {
    expect(() => new EventSourceResponse([], { sendTimout: 5 } as never)).toThrow(
      /Unknown option "sendTimout"/,
    )
  })
})
