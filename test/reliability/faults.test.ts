/**
 * Faults in user code: whatever the user's source, hooks, ping factory, producer or serializer
 * throws ends that one stream cleanly, reaches onError, never reaches the client as text, and
 * leaves the process and the other streams alone.
 */

import { setTimeout as delay } from 'node:timers/promises'
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest'
import {
  type CloseReason,
  type Content,
  EventSourceResponse,
  type StreamOptions,
  StreamRegistry,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { shortDurations } from '../../src/testing.ts'
import { closeAllServers, nodeServer, webServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'
import { openStream, unlessAborted } from './support.ts'

const SECRET = 'internal-secret-4f2a'

// Unhandled rejections and uncaught exceptions are captured per test and fail that test (in its
// afterEach, which vitest reports under the test's name): one stray rejection fails the test
// it happened in, not every later one. Between tests, vitest's own handlers report them.
let unhandled: unknown[] = []
const onUnhandled = (error: unknown) => unhandled.push(error)
beforeEach(() => {
  unhandled = []
  process.on('unhandledRejection', onUnhandled)
  process.on('uncaughtException', onUnhandled)
})
afterEach(async () => {
  process.off('unhandledRejection', onUnhandled)
  process.off('uncaughtException', onUnhandled)
  await closeAllServers()
  vi.restoreAllMocks()
  expect(unhandled, 'unhandled rejections and uncaught exceptions in this test').toEqual([])
})

/** A healthy stream beside the faulty one: it must keep flowing. */
async function* ticker({ signal }: { signal: AbortSignal }) {
  for (let i = 0; !signal.aborted; i++) {
    yield { id: String(i), data: `tick ${i}` }
    await delay(20, undefined, { signal }).catch(unlessAborted(signal))
  }
}

interface Fault {
  name: string
  content: Content<never>
  options: StreamOptions<never>
  /** The close reason the faulty stream must end with. */
  reason: CloseReason
  /** How the client sees the end: a clean final chunk, or a torn connection. */
  end: 'end' | 'close'
  /** Whether the first event is produced before the fault strikes. */
  first?: false
  /** The one error onError must hear: its message. */
  error: RegExp
}

function boom(where: string): Error {
  return new Error(`${SECRET}: ${where} failed`)
}

const faults: Fault[] = [
  {
    name: 'a source that throws mid-stream',
    error: /source failed/,
    content: async function* () {
      yield 'first'
      throw boom('source')
    },
    options: {},
    reason: 'error',
    end: 'end',
  },
  {
    name: 'a sync iterable that throws',
    error: /iterable failed/,
    content: () =>
      (function* () {
        yield 'first'
        throw boom('iterable')
      })(),
    options: {},
    reason: 'error',
    end: 'end',
  },
  {
    name: 'a ReadableStream that errors',
    error: /readable failed/,
    content: () => {
      let pulls = 0
      return new ReadableStream({
        pull(controller) {
          if (pulls++ === 0) controller.enqueue('first')
          else controller.error(boom('readable'))
        },
      })
    },
    options: {},
    reason: 'error',
    end: 'end',
  },
  {
    name: 'a pingMessage that throws',
    error: /pingMessage failed/,
    content: async function* ({ signal }) {
      yield 'first'
      await delay(5000, undefined, { signal }).catch(unlessAborted(signal))
    },
    options: shortDurations({
      ping: 30,
      pingMessage: () => {
        throw boom('pingMessage')
      },
    }),
    reason: 'error',
    end: 'end',
  },
  {
    name: 'a pingMessage that returns an invalid item',
    error: /Invalid event field "event": expected a single line/,
    content: async function* ({ signal }) {
      yield 'first'
      await delay(5000, undefined, { signal }).catch(unlessAborted(signal))
    },
    options: shortDurations({ ping: 30, pingMessage: () => ({ event: `x\ndata: ${SECRET}` }) }),
    reason: 'error',
    end: 'end',
  },
  {
    name: 'a dataSender that throws synchronously',
    error: /dataSender failed/,
    // It fails as the stream starts, before the source is pulled: nothing is sent.
    first: false,
    content: ['first'],
    options: {
      dataSender: () => {
        throw boom('dataSender')
      },
    },
    reason: 'error',
    end: 'end',
  },
  {
    name: 'a dataSender that rejects later',
    error: /dataSender failed/,
    content: async function* ({ signal }) {
      yield 'first'
      await delay(5000, undefined, { signal }).catch(unlessAborted(signal))
    },
    options: {
      dataSender: async () => {
        await delay(30)
        throw boom('dataSender')
      },
    },
    reason: 'error',
    end: 'end',
  },
  {
    name: 'a serializer that throws',
    error: /serialize failed/,
    content: ['first', { data: { n: 1 } }, 'never'],
    options: {
      serialize: () => {
        throw boom('serialize')
      },
    },
    reason: 'error',
    end: 'end',
  },
  {
    name: 'a serializer that returns a non-string',
    error: /the serializer returned number 42/,
    content: ['first', { data: { n: 1 } }],
    options: { serialize: () => 42 as unknown as string },
    reason: 'error',
    end: 'end',
  },
  {
    name: 'an event with an injected id',
    error: /Invalid event field "id"/,
    content: ['first', { id: `1\ndata: ${SECRET}`, data: 'x' }],
    options: {},
    reason: 'error',
    end: 'end',
  },
  {
    name: 'an item of the wrong type',
    error: /Invalid content item: .* received number 42/,
    content: ['first', 42 as unknown as string],
    options: {},
    reason: 'error',
    end: 'end',
  },
]

for (const transport of ['node', 'web'] as const) {
  describe(`faults in user code (${transport})`, () => {
    test.each(faults)(
      '$name: that stream ends cleanly, onError hears it, others flow',
      async (fault) => {
        const registry = new StreamRegistry()
        const errors: unknown[] = []
        const closes: Array<{ path: string; reason: CloseReason }> = []
        const optionsFor = (path: string) => ({
          registry,
          onError: (error: unknown) => errors.push(error),
          onClose: (reason: CloseReason) => closes.push({ path, reason }),
        })
        const server =
          transport === 'node'
            ? await nodeServer((req, res) => {
                const path = req.url ?? ''
                if (path === '/healthy') {
                  void sendEventStream(req, res, ticker, optionsFor(path))
                } else {
                  void sendEventStream(req, res, fault.content as Content<typeof req>, {
                    ...(fault.options as StreamOptions<typeof req>),
                    ...optionsFor(path),
                  })
                }
              })
            : await webServer((request) => {
                const path = new URL(request.url).pathname
                if (path === '/healthy') {
                  return new EventSourceResponse(ticker, { request, ...optionsFor(path) })
                }
                return new EventSourceResponse(fault.content as Content<Request | undefined>, {
                  ...(fault.options as StreamOptions<Request | undefined>),
                  ...optionsFor(path),
                  request,
                })
              })

        const healthy = await openStream(`${server.url}/healthy`)
        const faulty = await openStream(`${server.url}/faulty`)
        expect(faulty.res.statusCode).toBe(200)
        const how = await faulty.ended
        expect(how).toBe(fault.end)
        await waitFor('faulty stream closed', () => closes.some((c) => c.path === '/faulty'))
        expect(closes.filter((c) => c.path === '/faulty')).toEqual([
          { path: '/faulty', reason: fault.reason },
        ])
        // The client got what was produced before the fault, and not one word of the error.
        if (fault.first === false) expect(faulty.text()).not.toContain('data: first')
        else expect(faulty.text()).toContain('data: first')
        expect(faulty.text()).not.toContain(SECRET)
        expect(faulty.text()).not.toMatch(/error|Error|stack/)
        expect(errors).toHaveLength(1)
        expect((errors[0] as Error).message).toMatch(fault.error)

        // The healthy stream is still flowing after the fault.
        const before = healthy.text().length
        await waitFor('healthy stream flows on', () => healthy.text().length, {
          until: (n) => n > before + 30,
        })
        expect(healthy.res.complete).toBe(false)
        healthy.destroy()
        await waitFor('registry empty', () => registry.size, { until: (n) => n === 0 })
      },
    )
  })
}

describe('faults in hooks', () => {
  test('an onClose that throws reaches onError once; the process lives', async () => {
    const errors: unknown[] = []
    let closes = 0
    const server = await nodeServer((req, res) => {
      void sendEventStream(req, res, ['a', 'b'], {
        registry: new StreamRegistry(),
        onError: (error) => errors.push(error),
        onClose: () => {
          closes++
          throw boom('onClose')
        },
      })
    })
    for (let i = 0; i < 3; i++) {
      const stream = await openStream(server.url)
      expect(await stream.ended).toBe('end')
    }
    await waitFor('three onClose errors', () => errors.length, { until: (n) => n === 3 })
    expect(closes).toBe(3)
    expect((errors[0] as Error).message).toContain('onClose failed')
  })

  test('an onError that throws is logged with the original error, never thrown', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    const server = await nodeServer((req, res) => {
      void sendEventStream(
        req,
        res,
        (async function* () {
          yield 'a'
          throw boom('source')
        })(),
        {
          registry: new StreamRegistry(),
          onError: () => {
            throw boom('onError')
          },
        },
      )
    })
    const stream = await openStream(server.url)
    expect(await stream.ended).toBe('end')
    await waitFor('both errors logged', () => logged.mock.calls.length, { until: (n) => n >= 2 })
    const text = logged.mock.calls.map((call) => String(call[1])).join('\n')
    expect(text).toContain('onError failed')
    expect(text).toContain('source failed')
  })

  test('without onError, a failure is logged by default and the stream still ends cleanly', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    const server = await nodeServer((req, res) => {
      void sendEventStream(
        req,
        res,
        (async function* () {
          yield 'a'
          throw boom('source')
        })(),
        { registry: new StreamRegistry() },
      )
    })
    const stream = await openStream(server.url)
    expect(await stream.ended).toBe('end')
    await waitFor('error logged', () => logged.mock.calls.length, { until: (n) => n >= 1 })
    expect(String(logged.mock.calls[0]?.[1])).toContain('source failed')
    expect(stream.text()).not.toContain(SECRET)
  })

  test('an onShutdown that throws is reported; the stream still shuts down', async () => {
    const errors: unknown[] = []
    const registry = new StreamRegistry()
    const closes: CloseReason[] = []
    const server = await nodeServer((req, res) => {
      void sendEventStream(req, res, ticker, {
        registry,
        onError: (error) => errors.push(error),
        onClose: (reason) => closes.push(reason),
        onShutdown: () => {
          throw boom('onShutdown')
        },
      })
    })
    const stream = await openStream(server.url)
    await waitFor('stream flowing', () => stream.text().includes('tick 1'))
    await registry.closeAll({ grace: 50 })
    expect(await stream.ended).toBe('end')
    expect(closes).toEqual(['shutdown'])
    expect(errors).toHaveLength(1)
    expect((errors[0] as Error).message).toContain('onShutdown failed')
  })

  test('a source whose cleanup throws on disconnect is reported, not thrown', async () => {
    const errors: unknown[] = []
    const closes: CloseReason[] = []
    const server = await nodeServer((req, res) => {
      void sendEventStream(
        req,
        res,
        async function* ({ signal }) {
          try {
            for (;;) {
              yield 'x'
              await delay(20, undefined, { signal })
            }
          } finally {
            // biome-ignore lint/correctness/noUnsafeFinally: the fault under test
            throw boom('finally')
          }
        } as Content<typeof req>,
        {
          registry: new StreamRegistry(),
          onError: (error) => errors.push(error),
          onClose: (reason) => closes.push(reason),
        },
      )
    })
    const stream = await openStream(server.url)
    await waitFor('first event', () => stream.text().includes('data: x'))
    stream.destroy()
    await waitFor('cleanup error reported', () => errors.length, { until: (n) => n === 1 })
    expect(closes).toEqual(['disconnect'])
    expect((errors[0] as Error).message).toContain('finally failed')
  })
})
