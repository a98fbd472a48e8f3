/**
 * Values that can only be mistakes are refused, loudly, where they are made (issue #17, items 6,
 * 9, 13 and 14): durations written in seconds, a Promise (a forgotten `await`) or another object
 * given as an event, an event changed after its checks, and user code that throws while its
 * event is read. Each case is served over a real socket and read by a real parser, so what is
 * asserted is what a client would have received.
 */

import { afterEach, describe, expect, test } from 'vitest'
import {
  Broadcaster,
  type CloseReason,
  ConnectionLimiter,
  EventSourceResponse,
  encodeEvent,
  installShutdownHandlers,
  isSseError,
  ServerSentEvent,
  type StreamOptions,
  StreamRegistry,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { readEvents, readMessages, shortDurations } from '../../src/testing.ts'
import { closeAllServers, nodeServer, webServer } from '../helpers/servers.ts'
import { afterOpening, OPENING_FRAME, untilAborted } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'

afterEach(closeAllServers)

type Source = Parameters<typeof sendEventStream>[2]

interface Served {
  url: string
  errors: unknown[]
  closes: CloseReason[]
}

/**
 * Serves `source()` with `options` through node:http and through the web transport. A handler
 * whose call throws answers 500 with the error's message, as an application's error path would.
 */
async function both(source: () => Source, options: StreamOptions = {}): Promise<Served[]> {
  const served: Served[] = []
  const hooks = (entry: Served) => ({
    ...options,
    onError: (error: unknown) => entry.errors.push(error),
    onClose: (reason: CloseReason) => entry.closes.push(reason),
  })
  const node: Served = { url: '', errors: [], closes: [] }
  node.url = (
    await nodeServer((req, res) => {
      try {
        void sendEventStream(req, res, source(), hooks(node))
      } catch (error) {
        res.writeHead(500).end((error as Error).message)
      }
    })
  ).url
  const web: Served = { url: '', errors: [], closes: [] }
  web.url = (
    await webServer((request) => {
      try {
        return new EventSourceResponse(source() as never, { ...hooks(web), request })
      } catch (error) {
        return new Response((error as Error).message, { status: 500 })
      }
    })
  ).url
  served.push(node, web)
  return served
}

/** Fetches `url`; the status and the body, read to its end. */
async function fetchText(url: string): Promise<{ status: number; text: string }> {
  const response = await fetch(url)
  return { status: response.status, text: await response.text() }
}

/** The one error a stream reported, once it has ended. */
async function reported(entry: Served): Promise<unknown> {
  await waitFor('the stream to end', () => entry.closes.length)
  expect(entry.closes).toEqual(['error'])
  expect(entry.errors).toHaveLength(1)
  return entry.errors[0]
}

describe('durations (item 6)', () => {
  test('a duration written in seconds is refused before anything is sent, with the likely intent', async () => {
    const cases: Array<[StreamOptions, RegExp]> = [
      [
        { ping: 10 },
        /^Invalid option "ping": expected a whole number of milliseconds from 1000 to 2147483647, or 0 or false to disable \(did you mean 10000 for 10 s\?\), received number 10\. Values below 1000 ms are for tests only: wrap the options in shortDurations\(\) from "oven-sse\/testing"\.$/,
      ],
      [
        { sendTimeout: 30 },
        /^Invalid option "sendTimeout": expected a whole number of milliseconds from 1000 to 2147483647, or 0 for none \(did you mean 30000 for 30 s\?\), received number 30\./,
      ],
      [{ ping: 2.5 }, /"ping".*\(did you mean 2500 for 2\.5 s\?\)/],
      // `now + 1e-13 === now`: the keep-alive timer used to fire for ever without time passing.
      [
        { ping: 1e-13 },
        /"ping": expected a whole number of milliseconds .* received number 1e-13\.$/,
      ],
      [{ shutdownGrace: 2.5 }, /"shutdownGrace".*or 0 for none \(did you mean 2500 for 2\.5 s\?\)/],
      [{ retry: 0.5 }, /"retry": expected a whole number of milliseconds/],
      [{ retry: 3e9 }, /"retry".* to 2147483647/],
    ]
    for (const [options, message] of cases) {
      for (const { url } of await both(() => ['never sent'], options)) {
        const { status, text } = await fetchText(url)
        expect({ options, status }).toEqual({ options, status: 500 })
        expect(text).toMatch(message)
      }
      await closeAllServers()
    }
  })

  test('every duration option is checked by the same rule', async () => {
    const server = { close: (done?: () => void) => done?.() }
    const install = (options: object) =>
      installShutdownHandlers(server, { exit: false, ...options })
    expect(() => install({ forceAfter: 10 })).toThrow(
      /"forceAfter": expected a whole number of milliseconds from 1000 to 2147483647, or 0 to wait for ever \(did you mean 10000 for 10 s\?\)/,
    )
    expect(() => install({ grace: 0.5 })).toThrow(/"grace".*did you mean 500 for 0\.5 s\?/)
    expect(() => new ConnectionLimiter({ retryAfter: 5 })).toThrow(
      /"retryAfter": expected a whole number of milliseconds from 1000 .*\(did you mean 5000 for 5 s\?\)/,
    )
    await expect(new StreamRegistry().closeAll({ grace: 1.5 })).rejects.toThrow(
      /"grace".*did you mean 1500 for 1\.5 s\?/,
    )
    // What production code writes is accepted as it is.
    install({ forceAfter: 10_000, grace: 2000 })()
    expect(new ConnectionLimiter({ retryAfter: 5000 }).retryAfterHeader).toBe('5')
    expect(() => new EventSourceResponse([], { ping: 1000, sendTimeout: 1000 })).not.toThrow()
    expect(() => new EventSourceResponse([], { ping: 0, sendTimeout: 0, retry: 0 })).not.toThrow()
  })

  test('shortDurations() is the explicit way down to 1 ms, and it survives a spread', async () => {
    const short = shortDurations({ ping: 1, sendTimeout: 5 })
    expect(() => new EventSourceResponse([], short)).not.toThrow()
    expect(() => new EventSourceResponse([], { ...short, ping: 20 })).not.toThrow()
    // Still whole milliseconds, at least 1: the values that froze the process stay refused.
    expect(() => new EventSourceResponse([], { ...short, ping: 1e-13 })).toThrow(/"ping"/)
    expect(() => new EventSourceResponse([], { ...short, ping: 0.5 })).toThrow(/"ping"/)
    const server = { close: (done?: () => void) => done?.() }
    installShutdownHandlers(server, shortDurations({ forceAfter: 50, exit: false }))()
    expect(new ConnectionLimiter(shortDurations({ retryAfter: 1 })).retryAfterHeader).toBe('1')

    // An idle client of a 20 ms ping gets pings about every 20 ms, never a flood.
    // biome-ignore lint/correctness/useYield: a source that sends nothing until the stream ends
    const idle = async function* ({ signal }: { signal: AbortSignal }) {
      await untilAborted(signal)
    }
    const [node] = await both(() => idle, { ...short, ping: 20 })
    const start = performance.now()
    const messages = afterOpening(await readMessages(node!.url, { count: 6, timeout: 5000 }))
    const elapsed = performance.now() - start
    expect(messages.map((m) => m.type === 'comment' && m.comment.trim().slice(0, 4))).toEqual(
      Array(5).fill('ping'),
    )
    // Five intervals of 20 ms on a whole-millisecond clock: never sooner than 5 × 18 ms.
    expect(elapsed).toBeGreaterThanOrEqual(90)
  })
})

describe('only strings, plain objects, ServerSentEvent and bytes are items (item 9)', () => {
  // A Promise that a source yields is awaited, as `for await` does; one given where no one
  // awaits it (encodeEvent, a pingMessage, publish) is refused below.
  const notItems: Array<[string, () => unknown, RegExp]> = [
    ['a Promise for a Date', () => Promise.resolve(new Date(0)), /received an instance of Date/],
    ['a Date', () => new Date(0), /received an instance of Date/],
    ['a Map', () => new Map([['data', 'x']]), /received an instance of Map/],
    ['an array', () => ['x'], /received an array/],
    ['an Error', () => new Error('x'), /received an instance of Error/],
    ['a RegExp', () => /x/, /received an instance of RegExp/],
    ['a class instance', () => new (class Reading {})(), /received an instance of Reading/],
  ]

  test.each(notItems)(
    '%s ends the stream through onError; nothing blank is sent',
    async (_, make, message) => {
      for (const entry of await both(() => ['before', make(), 'after'] as never)) {
        // Every event the client saw, blank ones included (a blank event dispatches nothing, so
        // the raw text is checked as well).
        const response = await fetch(entry.url)
        const text = await response.text()
        expect(text).toBe(`${OPENING_FRAME}data: before\r\n\r\n`)
        const error = await reported(entry)
        expect(isSseError(error)).toBe(true)
        expect(error).toMatchObject({ code: 'ERR_SSE_INVALID_EVENT' })
        expect((error as Error).message).toMatch(message)
      }
    },
  )

  test('a Promise where nothing awaits it is refused, naming the likely mistake', () => {
    for (const make of [
      () => encodeEvent(Promise.resolve({ data: 'x' }) as never),
      () => new ServerSentEvent(Promise.resolve({ data: 'x' }) as never),
    ]) {
      expect(make).toThrow(
        /^Invalid event: expected a plain object with data, event, id, retry or comment, received a Promise \(did you forget await\?\)\.$/,
      )
    }
  })

  test('a Promise as data is refused too (JSON.stringify made it "{}")', async () => {
    expect(() => encodeEvent({ data: Promise.resolve(1) })).toThrow(
      /"data": expected a value to serialize, received a Promise \(did you forget await\?\)/,
    )
    for (const entry of await both(() => [{ data: Promise.resolve({ n: 1 }) }])) {
      expect((await fetchText(entry.url)).text).toBe(OPENING_FRAME)
      expect(isSseError(await reported(entry))).toBe(true)
    }
  })

  test('plain objects from another realm and ServerSentEvent are items', async () => {
    const { runInNewContext } = await import('node:vm')
    expect(encodeEvent(runInNewContext('({ data: "other realm" })'))).toBe(
      'data: other realm\r\n\r\n',
    )
    expect(encodeEvent(Object.assign(Object.create(null), { data: 'bare' }))).toBe(
      'data: bare\r\n\r\n',
    )
    expect(encodeEvent(new ServerSentEvent({ event: 'e', data: 'x' }))).toBe(
      'event: e\r\ndata: x\r\n\r\n',
    )
  })

  test('a pingMessage that returns a Promise ends the stream instead of sending blank lines', async () => {
    expect(
      () =>
        new EventSourceResponse([], { pingMessage: (async () => ({ comment: 'late' })) as never }),
    ).toThrow(/"pingMessage": .* received an async function/)
    // biome-ignore lint/correctness/useYield: a source that sends nothing until the stream ends
    const idle = async function* ({ signal }: { signal: AbortSignal }) {
      await untilAborted(signal)
    }
    const options = shortDurations({
      ping: 20,
      pingMessage: () => Promise.resolve({ comment: 'late' }) as never,
    })
    for (const entry of await both(() => idle, options)) {
      expect((await fetchText(entry.url)).text).toBe(OPENING_FRAME)
      const error = await reported(entry)
      expect(isSseError(error)).toBe(true)
      expect(error).toMatchObject({ code: 'ERR_SSE_INVALID_EVENT' })
      expect((error as Error).message).toMatch(/did you forget await/)
    }
  })

  test('publish() refuses a Promise: no id is taken, no position moves', async () => {
    const hub = new Broadcaster()
    try {
      const server = await nodeServer((req, res) => {
        void sendEventStream(req, res, (ctx) => hub.subscribe('t', ctx), { ping: false })
      })
      const reading = readEvents(server.url, { count: 2, timeout: 5000 })
      await waitFor('the subscriber', () => hub.subscribers('t'))
      const first = await hub.publish('t', 'first')
      const fetchThing = async () => ({ data: 'thing' })
      await expect(hub.publish('t', fetchThing() as never)).rejects.toThrow(
        /Invalid event: expected a plain object .* received a Promise \(did you forget await\?\)/,
      )
      await expect(hub.publish('t', { data: fetchThing() })).rejects.toThrow(/did you forget await/)
      await expect(hub.publish('t', new Date() as never)).rejects.toThrow(/instance of Date/)
      const second = await hub.publish('t', 'second')
      const events = await reading
      expect(events.map((e) => [e.id, e.data])).toEqual([
        [first, 'first'],
        [second, 'second'],
      ])
      // The ids are consecutive positions: nothing was published in between.
      const seq = (id: string) => Number(id.slice(id.lastIndexOf('-') + 1))
      expect(seq(second)).toBe(seq(first) + 1)
    } finally {
      await hub.close()
    }
  })
})

describe('a ServerSentEvent cannot change after its checks (item 13)', () => {
  test('it is frozen, so a field never reaches the wire unchecked', async () => {
    const event = new ServerSentEvent({ event: 'note', data: 'x' })
    expect(Object.isFrozen(event)).toBe(true)
    expect(() => {
      ;(event as { event: string }).event = 'note\nid: injected'
    }).toThrow(TypeError)
    // With another separator the text is assembled again from the fields: they are the checked
    // ones.
    for (const entry of await both(() => [event], { sep: '\n' })) {
      expect((await fetchText(entry.url)).text).toBe(': ok\n\nevent: note\ndata: x\n\n')
    }
  })
})

describe('user code that throws while an event is read (item 14)', () => {
  const boom = new Error('boom')
  const throwing: Array<[string, () => object]> = [
    [
      'a getter',
      () => ({
        get data(): string {
          throw boom
        },
      }),
    ],
    [
      'a Proxy get trap',
      () =>
        new Proxy(
          { data: 'x' },
          {
            get() {
              throw boom
            },
          },
        ),
    ],
    [
      'a Proxy ownKeys trap',
      () =>
        new Proxy(
          { data: 'x' },
          {
            ownKeys() {
              throw boom
            },
          },
        ),
    ],
  ]

  test.each(throwing)('%s: an SseError with the thrown error as cause', async (_, make) => {
    expect(() => encodeEvent(make())).toThrow(
      expect.objectContaining({ code: 'ERR_SSE_INVALID_EVENT', cause: boom }),
    )
    for (const entry of await both(() => ['before', make()] as never)) {
      expect((await fetchText(entry.url)).text).toBe(`${OPENING_FRAME}data: before\r\n\r\n`)
      const error = await reported(entry)
      expect(isSseError(error)).toBe(true)
      expect(error).toMatchObject({ code: 'ERR_SSE_INVALID_EVENT' })
      expect((error as Error).cause).toBe(boom)
      expect((error as Error).message).toMatch(/reading its fields threw: boom/)
    }
    const hub = new Broadcaster()
    try {
      await expect(hub.publish('t', make() as never)).rejects.toThrow(
        expect.objectContaining({ code: 'ERR_SSE_INVALID_EVENT', cause: boom }),
      )
    } finally {
      await hub.close()
    }
  })
})
