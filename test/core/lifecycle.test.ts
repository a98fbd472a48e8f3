/**
 * A stream's life over a real socket: head before the first item, first event flushed at once,
 * disconnect stopping the source, send timeout dropping a stalled client without reading ahead,
 * the final chunk, and nothing left behind.
 */

import { getEventListeners } from 'node:events'
import type { ServerResponse } from 'node:http'
import { afterEach, describe, expect, test, vi } from 'vitest'
import {
  type CloseReason,
  EventSourceResponse,
  openEventSourceResponse,
  type StreamContext,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { iterateEvents, readEvents, shortDurations } from '../../src/testing.ts'
import { closeAllServers, nodeServer, waitFor, webServer } from '../helpers/servers.ts'
import {
  activeTimers,
  gate,
  OPENING_FRAME,
  sleepUnlessAborted,
  stalledClient,
} from '../helpers/streams.ts'

afterEach(closeAllServers)

type Transport = 'node' | 'web'
const transports: Transport[] = ['node', 'web']

/** Serves `content` (a function of ctx) with `options` on one transport. */
async function serve(
  transport: Transport,
  content: (
    ctx: StreamContext<unknown>,
  ) => AsyncIterable<unknown> | Iterable<unknown> | Promise<Iterable<unknown>>,
  options: Record<string, unknown> = {},
) {
  if (transport === 'node') {
    return nodeServer((req, res) => {
      void sendEventStream(req, res, content as never, options)
    })
  }
  return webServer((request) => new EventSourceResponse(content as never, { ...options, request }))
}

describe.each(transports)('%s transport', (transport) => {
  test('the head is sent before the source produces anything', async () => {
    const held = gate()
    const server = await serve(transport, async function* () {
      await held.promise
      yield 'late'
    })
    // If the head waited for the first item, this fetch would never resolve.
    const response = await fetch(server.url)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    held.open()
    expect(await response.text()).toBe(`${OPENING_FRAME}data: late\r\n\r\n`)
  })

  test('the first event is flushed at once, while the source is still running', async () => {
    const server = await serve(transport, async function* ({ signal }) {
      yield 'first'
      await sleepUnlessAborted(60_000, signal)
    })
    // The stream never ends: reading one event proves it was not buffered.
    const events = await readEvents(server.url, { count: 1, timeout: 3000 })
    expect(events.map((e) => e.data)).toEqual(['first'])
  })

  test('disconnect: ctx.signal aborts and a parked generator runs its finally at once', async () => {
    let finallyAt = 0
    let closeSeenAt = 0
    let reason: unknown
    const closed: CloseReason[] = []
    const content = async function* ({ signal }: StreamContext<unknown>) {
      try {
        yield 'hello'
        await sleepUnlessAborted(60_000, signal)
        yield 'never'
      } finally {
        reason = signal.reason
        finallyAt = performance.now()
      }
    }
    const options = { onClose: (r: CloseReason) => closed.push(r) }
    // The clock starts when the server itself sees the client go (socket close on Node, the
    // request signal on the web path): what follows is Oven's reaction, not loopback latency.
    const server =
      transport === 'node'
        ? await nodeServer((req, res) => {
            res.on('close', () => {
              closeSeenAt = performance.now()
            })
            void sendEventStream(req, res, content, options)
          })
        : await webServer((request) => {
            request.signal.addEventListener('abort', () => {
              closeSeenAt = performance.now()
            })
            return new EventSourceResponse(content, { ...options, request })
          })
    const controller = new AbortController()
    const events = iterateEvents(server.url, { signal: controller.signal })
    expect((await events.next()).value?.data).toBe('hello')
    controller.abort()
    await waitFor(() => finallyAt > 0 && closeSeenAt > 0, 5000, 'generator finally')
    expect(finallyAt - closeSeenAt).toBeLessThan(100)
    expect(reason).toBe('disconnect')
    await waitFor(() => closed.length > 0)
    expect(closed).toEqual(['disconnect'])
  })

  test("disconnect: the source's return() is called even for a plain iterator", async () => {
    let returned = false
    let pulled = 0
    const server = await serve(transport, () => ({
      [Symbol.iterator]() {
        return {
          next: () => {
            pulled++
            return { done: false, value: { data: 'x'.repeat(1000) } }
          },
          return: () => {
            returned = true
            return { done: true, value: undefined }
          },
        }
      },
    }))
    await readEvents(server.url, { count: 5 })
    await waitFor(() => returned, 2000, 'return() called')
    expect(pulled).toBeGreaterThan(0)
  })

  test('a source error after events: the client gets the events and a clean end', async () => {
    const errors: unknown[] = []
    const server = await serve(
      transport,
      async function* () {
        yield 'a'
        yield 'b'
        throw new Error('boom')
      },
      { onError: (e: unknown) => errors.push(e) },
    )
    const response = await fetch(server.url)
    // text() rejects if the response is cut off without its final chunk.
    expect(await response.text()).toBe(`${OPENING_FRAME}data: a\r\n\r\ndata: b\r\n\r\n`)
    expect(errors).toHaveLength(1)
  })

  test('raw Uint8Array items are written as they are', async () => {
    const server = await serve(transport, () => [
      new TextEncoder().encode('data: raw\n\n'),
      { data: 'framed' },
    ])
    expect(await (await fetch(server.url)).text()).toBe(
      `${OPENING_FRAME}data: raw\n\ndata: framed\r\n\r\n`,
    )
  })

  test('a client that stops reading: the source is not pulled ahead, sendTimeout drops it', async () => {
    let pulled = 0
    const closed: CloseReason[] = []
    let finallyRan = false
    const server = await serve(
      transport,
      async function* () {
        try {
          for (;;) {
            pulled++
            yield { data: 'x'.repeat(4096) }
          }
        } finally {
          finallyRan = true
        }
      },
      shortDurations({ sendTimeout: 400, onClose: (r: CloseReason) => closed.push(r) }),
    )
    // The web transport drops the stream by erroring its body, and @hono/node-server logs an
    // errored body with console.error: record it here (asserted below), not on the test output.
    const logged: unknown[] = []
    const consoleError = vi.spyOn(console, 'error').mockImplementation((error) => {
      logged.push(error)
    })
    const socket = await stalledClient(server.port)
    try {
      // The socket buffers fill, then the pump must stop pulling.
      let previous = -1
      await waitFor(
        () => {
          const settled = pulled === previous && pulled > 0
          previous = pulled
          return settled
        },
        5000,
        'pulling to stop',
      )
      const bytesPulled = pulled * 4096
      // Bounded by kernel socket buffers plus one batch, not by the source (which is endless).
      expect(bytesPulled).toBeLessThan(48 * 1024 * 1024)
      await waitFor(() => closed.length > 0, 5000, 'send timeout')
      expect(closed).toEqual(['timeout'])
      expect(finallyRan).toBe(true)
      const pulledAtTimeout = pulled
      await new Promise((resolve) => setTimeout(resolve, 100))
      expect(pulled).toBe(pulledAtTimeout)
      if (transport === 'web') {
        // Dropped, not ended: the server saw the body fail, so no clean final chunk was sent.
        await waitFor(() => logged.length > 0, 5000, 'the server to report the dropped body')
        expect(logged).toHaveLength(1)
        expect(String(logged[0])).toContain('stream dropped without a clean end (send timeout)')
      } else {
        expect(logged).toEqual([])
      }
    } finally {
      consoleError.mockRestore()
      socket.destroy()
    }
  })

  test('nothing is left behind: timers, listeners', async () => {
    const responses: ServerResponse[] = []
    const signals: AbortSignal[] = []
    const closed: CloseReason[] = []
    const options = shortDurations({
      ping: 20,
      sendTimeout: 5000,
      onClose: (r: CloseReason) => closed.push(r),
      onError: () => {},
    })
    const server =
      transport === 'node'
        ? await nodeServer((req, res) => {
            responses.push(res)
            void sendEventStream(req, res, streamUntil(req.url), options)
          })
        : await webServer((request) => {
            signals.push(request.signal)
            return new EventSourceResponse(streamUntil(request.url), { ...options, request })
          })
    const baseline = activeTimers()
    // done, error, disconnect.
    await readEvents(`${server.url}/?end=done`)
    await readEvents(`${server.url}/?end=error`).catch(() => {})
    await readEvents(`${server.url}/?end=never`, { count: 1 })
    await waitFor(() => closed.length === 3, 3000, 'three streams closed')
    expect(closed.sort()).toEqual(['disconnect', 'done', 'error'])
    await waitFor(() => activeTimers() <= baseline, 2000, 'timers cleared')
    for (const res of responses) {
      await waitFor(() => res.listenerCount('close') === 0, 2000, 'close listeners removed')
      expect(res.listenerCount('drain')).toBe(0)
    }
    for (const signal of signals) expect(getEventListeners(signal, 'abort')).toHaveLength(0)
  })
})

function streamUntil(url: string | undefined) {
  const end = new URL(url ?? '/', 'http://x').searchParams.get('end')
  return async function* ({ signal }: StreamContext<unknown>) {
    yield 'one'
    if (end === 'error') throw new Error('planned')
    if (end === 'never') await sleepUnlessAborted(60_000, signal)
  }
}

describe('content forms', () => {
  test.each([
    ['an array', () => ['a', 'b']],
    [
      'a sync generator',
      () =>
        (function* () {
          yield 'a'
          yield 'b'
        })(),
    ],
    [
      'an async generator',
      () =>
        (async function* () {
          yield 'a'
          yield 'b'
        })(),
    ],
    [
      'a ReadableStream',
      () =>
        new ReadableStream({
          start(controller) {
            controller.enqueue('a')
            controller.enqueue('b')
            controller.close()
          },
        }),
    ],
    ['a sync iterable of promises', () => [Promise.resolve('a'), Promise.resolve('b')]],
  ])('%s', async (_name, make) => {
    for (const transport of transports) {
      const server = await serve(transport, () => make() as Iterable<unknown>)
      const events = await readEvents(server.url)
      expect(events.map((e) => e.data)).toEqual(['a', 'b'])
    }
  })

  test('an async content function returning a source', async () => {
    for (const transport of transports) {
      const server = await serve(transport, async () => {
        await new Promise((resolve) => setTimeout(resolve, 5))
        return ['a', 'b']
      })
      expect((await readEvents(server.url)).map((e) => e.data)).toEqual(['a', 'b'])
    }
  })

  test('content that is not a source is refused at once', () => {
    expect(() => new EventSourceResponse('text' as never)).toThrow(
      /received string "text".*\[text\]/,
    )
    expect(() => new EventSourceResponse(42 as never)).toThrow(/ERR_SSE|Invalid content/)
  })

  test('a content function that throws before the head: sendEventStream rejects, nothing sent', async () => {
    const outcomes: unknown[] = []
    const server = await nodeServer((req, res) => {
      sendEventStream(req, res, async () => {
        throw new Error('not authorised')
      }).then(
        () => outcomes.push('resolved'),
        (error: Error) => {
          outcomes.push(error.message)
          expect(res.headersSent).toBe(false)
          res.writeHead(401).end('nope')
        },
      )
    })
    const response = await fetch(server.url)
    expect(response.status).toBe(401)
    expect(await response.text()).toBe('nope')
    expect(outcomes).toEqual(['not authorised'])
  })

  test('openEventSourceResponse: a throwing content function ends the stream as an error, nothing sent', async () => {
    const seen: string[] = []
    const server = await webServer(async (request) => {
      try {
        return await openEventSourceResponse(
          async ({ signal }) => {
            signal.addEventListener('abort', () => seen.push(`signal ${signal.reason}`))
            throw new Error('not authorised')
          },
          { request, onClose: (reason) => seen.push(`onClose ${reason}`) },
        )
      } catch (error) {
        seen.push((error as Error).message)
        return new Response('nope', { status: 401 })
      }
    })
    const response = await fetch(server.url)
    expect(response.status).toBe(401)
    expect(await response.text()).toBe('nope')
    expect(seen).toEqual(['signal error', 'onClose error', 'not authorised'])
  })

  test('openEventSourceResponse: a client leaving while the content function runs aborts its signal', async () => {
    const ready = gate()
    let reason: unknown
    let stopped = false
    let running = false
    const server = await webServer((request) =>
      openEventSourceResponse(
        async ({ signal }) => {
          running = true
          signal.addEventListener('abort', () => {
            reason = signal.reason
          })
          await ready.promise
          return new ReadableStream<string>({
            cancel() {
              stopped = true
            },
          })
        },
        { request },
      ),
    )
    const controller = new AbortController()
    const pending = fetch(server.url, { signal: controller.signal }).catch(() => {})
    await waitFor(() => running, 5000, 'the content function to run')
    controller.abort()
    await pending
    await waitFor(() => reason !== undefined, 2000, 'signal aborted')
    expect(reason).toBe('disconnect')
    // The source the function returns after all is stopped, not left running.
    ready.open()
    await waitFor(() => stopped, 2000, 'source stopped')
  })

  test('a client gone before the call: the stream ends at once as a disconnect', async () => {
    let result: Promise<CloseReason> | undefined
    let started = false
    let requestSeen = false
    const server = await nodeServer((req, res) => {
      requestSeen = true
      res.on('close', () => {
        result = sendEventStream(req, res, async function* () {
          started = true
          yield 'x'
        })
      })
    })
    const controller = new AbortController()
    const pending = fetch(server.url, { signal: controller.signal }).catch(() => {})
    await waitFor(() => requestSeen, 5000, 'the server to have the request')
    controller.abort()
    await pending
    await waitFor(() => result !== undefined, 2000, 'handler saw close')
    expect(await result).toBe('disconnect')
    expect(started).toBe(false)
  })

  test('a head already sent is refused at once', async () => {
    let error: unknown
    const server = await nodeServer((req, res) => {
      res.writeHead(200).flushHeaders()
      try {
        void sendEventStream(req, res, [])
      } catch (e) {
        error = e
      }
      res.end()
    })
    await (await fetch(server.url)).text()
    expect(error).toMatchObject({ code: 'ERR_SSE_HEADERS_SENT' })
  })

  test('Last-Event-ID reaches ctx.lastEventId, from the header or the query', async () => {
    for (const transport of transports) {
      const server = await serve(transport, ({ lastEventId }) => [{ data: lastEventId ?? 'none' }])
      expect((await readEvents(server.url, { lastEventId: '42' }))[0]?.data).toBe('42')
      expect((await readEvents(`${server.url}/?lastEventId=7`))[0]?.data).toBe('7')
      expect((await readEvents(server.url))[0]?.data).toBe('none')
    }
  })
})
