/**
 * How a stream treats its source at the edges, over real sockets: an item that is not an event
 * is an error that names it; a promise a sync iterable yields may reject and must not hang the
 * stream; an item whose `then` throws is an unreadable event; a sync `dataSender` is fine; the
 * source's `return()` is called once when it is stopped, never after it finished, may be missing,
 * and its failure is reported; `ctx.signal` read after the end is aborted with the reason; a
 * source rethrowing that reason is not an error; a send timeout tears the connection down.
 */

import type { ServerResponse } from 'node:http'
import { afterEach, describe, expect, test } from 'vitest'
import {
  type CloseReason,
  type SseError,
  type StreamContext,
  StreamRegistry,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { readEvents, shortDurations } from '../../src/testing.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { stalledClient } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'

afterEach(closeAllServers)

/** A node:http server streaming `content`, recording errors, close reasons and responses. */
/**
 * A source with no `return()` and no look at `ctx.signal`: it yields `x`, then never answers
 * again.
 */
function oneThenSilence(): AsyncIterable<string> {
  return {
    [Symbol.asyncIterator]: () => {
      let first = true
      return {
        next: () => {
          if (!first) return new Promise<never>(() => {})
          first = false
          return Promise.resolve({ done: false, value: 'x' })
        },
      }
    },
  }
}

async function serve(content: (ctx: StreamContext<unknown>) => unknown, options: object = {}) {
  const errors: unknown[] = []
  const reasons: CloseReason[] = []
  const responses: ServerResponse[] = []
  const server = await nodeServer((req, res) => {
    responses.push(res)
    void sendEventStream(req, res, content as never, {
      onError: (error: unknown) => errors.push(error),
      onClose: (reason: CloseReason) => reasons.push(reason),
      ...options,
    })
  })
  const closed = () => waitFor('the stream to close', () => reasons, { until: (r) => r.length > 0 })
  return { server, errors, reasons, responses, closed }
}

/** Opens a stream, reads its first event, then leaves. */
async function readOneAndLeave(url: string): Promise<void> {
  const controller = new AbortController()
  const events = await readEvents(url, { count: 1, signal: controller.signal })
  expect(events).toHaveLength(1)
  controller.abort()
}

describe('items that are not events', () => {
  test.each([
    [42, 'number 42'],
    [null, 'null'],
    [true, 'boolean true'],
  ])('%j ends the stream with ERR_SSE_INVALID_EVENT naming the item', async (item, received) => {
    const { server, errors, reasons, closed } = await serve(() => ['before', item, 'after'])
    expect((await readEvents(server.url)).map((event) => event.data)).toEqual(['before'])
    await closed()
    expect(reasons).toEqual(['error'])
    const error = errors[0] as SseError
    expect(errors).toHaveLength(1)
    expect(error.code).toBe('ERR_SSE_INVALID_EVENT')
    expect(error.message).toBe(
      'Invalid content item: expected a string, an event object, a ServerSentEvent or a ' +
        `Uint8Array, received ${received}.`,
    )
  })

  test('an item whose `then` getter throws is an unreadable event, with the cause', async () => {
    const trap = new Error('then trap')
    const item = {
      data: 'x',
      // biome-ignore lint/suspicious/noThenProperty: a `then` that throws is what is tested
      get then(): unknown {
        throw trap
      },
    }
    const { server, errors, reasons, closed } = await serve(() => [item])
    expect(await readEvents(server.url)).toEqual([])
    await closed()
    expect(reasons).toEqual(['error'])
    const error = errors[0] as SseError
    expect(error.code).toBe('ERR_SSE_INVALID_EVENT')
    expect(error.message).toContain('reading its fields threw: then trap')
    expect(error.cause).toBe(trap)
  })
})

describe('promises yielded by a sync iterable', () => {
  test('a rejected one ends the stream with its error: no hang', async () => {
    const late = new Error('late failure')
    const { server, errors, reasons, closed } = await serve(function* () {
      yield 'a'
      yield Promise.resolve('b')
      yield Promise.reject(late)
      yield 'never'
    })
    expect((await readEvents(server.url)).map((event) => event.data)).toEqual(['a', 'b'])
    await closed()
    expect(reasons).toEqual(['error'])
    expect(errors).toEqual([late])
  })
})

describe('dataSender', () => {
  test('a synchronous dataSender (returning nothing) is fine', async () => {
    let called = 0
    const { server, errors, reasons, closed } = await serve(() => ['a', 'b'], {
      dataSender: () => {
        called++
      },
    })
    expect((await readEvents(server.url)).map((event) => event.data)).toEqual(['a', 'b'])
    await closed()
    expect(called).toBe(1)
    expect(reasons).toEqual(['done'])
    expect(errors).toEqual([])
  })
})

describe("the source's return()", () => {
  /** An endless sync iterator yielding 'x', with optional return(). */
  function iterator(onReturn?: () => unknown): Iterable<string> {
    const it: Iterator<string> = { next: () => ({ done: false, value: 'x' }) }
    if (onReturn) it.return = () => onReturn() as IteratorResult<string>
    return { [Symbol.iterator]: () => it }
  }

  test('is never called on a source that finished', async () => {
    let returns = 0
    let served = 0
    const it: Iterator<string> = {
      next: () =>
        served < 2 ? { done: false, value: `e${served++}` } : { done: true, value: undefined },
      return: () => {
        returns++
        return { done: true, value: undefined }
      },
    }
    const { server, errors, reasons, closed } = await serve(() => ({ [Symbol.iterator]: () => it }))
    expect((await readEvents(server.url)).map((event) => event.data)).toEqual(['e0', 'e1'])
    await closed()
    expect(reasons).toEqual(['done'])
    expect(returns).toBe(0)
    expect(errors).toEqual([])
  })

  test('a source without return() is simply dropped on disconnect: nothing reported', async () => {
    const { server, errors, reasons, closed } = await serve(oneThenSilence)
    await readOneAndLeave(server.url)
    await closed()
    expect(reasons).toEqual(['disconnect'])
    expect(errors).toEqual([])
  })

  test('a return() that throws, or rejects, on disconnect is reported once', async () => {
    for (const fail of [
      (error: Error) => {
        throw error
      },
      (error: Error) => Promise.reject(error),
    ]) {
      const cleanup = new Error('cleanup failed')
      let returns = 0
      const { server, errors, reasons, closed } = await serve(
        () =>
          iterator(() => {
            returns++
            return fail(cleanup)
          }),
        // A small sendTimeout is not needed: the client leaves after the first event.
      )
      await readOneAndLeave(server.url)
      await closed()
      await waitFor('the cleanup failure to be reported', () => errors, {
        until: (e) => e.length > 0,
      })
      expect(reasons).toEqual(['disconnect'])
      expect(returns).toBe(1)
      expect(errors).toEqual([cleanup])
    }
  })
})

describe('ctx.signal', () => {
  test('read only after the stream ended, it is aborted with the reason', async () => {
    let ctx: StreamContext<unknown> | undefined
    const { server, reasons, closed } = await serve((context) => {
      ctx = context
      return ['a']
    })
    await readEvents(server.url)
    await closed()
    expect(reasons).toEqual(['done'])
    // The signal is made on first use: here, after the end.
    expect(ctx?.signal.aborted).toBe(true)
    expect(ctx?.signal.reason).toBe('done')
  })

  test('a source that rethrows the abort reason after a disconnect is not an error', async () => {
    const { server, errors, reasons, closed } = await serve(async function* (ctx) {
      yield 'a'
      await new Promise((_, reject) => {
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })
      })
    })
    await readOneAndLeave(server.url)
    await closed()
    expect(reasons).toEqual(['disconnect'])
    expect(errors).toEqual([])
  })
})

describe('send timeout', () => {
  test('a client that stopped reading has its connection torn down, not ended', async () => {
    const { server, reasons, responses, closed } = await serve(
      async function* () {
        for (;;) yield { data: 'x'.repeat(4096) }
      },
      shortDurations({ sendTimeout: 300 }),
    )
    const socket = await stalledClient(server.port)
    try {
      await closed()
      expect(reasons).toEqual(['timeout'])
      // A clean end would wait for ever behind the unread bytes, holding the connection.
      await waitFor(
        'the server side of the connection to be destroyed',
        () => responses[0]?.socket?.destroyed ?? true,
      )
      expect(responses[0]?.destroyed).toBe(true)
    } finally {
      socket.destroy()
    }
  })
})

describe('shutdown', () => {
  test('a source that never looks at ctx.signal is ended after the grace: reason shutdown, no error', async () => {
    const registry = new StreamRegistry()
    const { server, errors, reasons, closed } = await serve(oneThenSilence, { registry })
    const read = readEvents(server.url)
    await waitFor('the stream to be registered', () => registry.size, { until: (n) => n === 1 })
    await registry.closeAll({ grace: 50 })
    await closed()
    expect(reasons).toEqual(['shutdown'])
    expect(errors).toEqual([])
    expect((await read).map((event) => event.data)).toEqual(['x'])
  })
})
