/**
 * A source bound to a contract, over real sockets on both transports (node:http and the web
 * `Response`), with each schema library: valid events arrive with their data as JSON (the
 * schema's output), and the first event the contract refuses is never sent: the stream ends
 * through `onError`, and the source is stopped.
 */

import { afterEach, describe, expect, test } from 'vitest'
import {
  type CloseReason,
  type Content,
  type ContractInput,
  defineContract,
  EventSourceResponse,
  type SseError,
  typedSource,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { readEvents } from '../../src/testing.ts'
import { closeAllServers, nodeServer, webServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'
import { asyncContracts, badProgress, type JobContract, libraries } from './schemas.ts'

afterEach(closeAllServers)

/** Serves `content` on a transport, recording what reached `onError` and `onClose`. */
async function serve(transport: 'node' | 'web', content: Content) {
  const errors: unknown[] = []
  const reasons: CloseReason[] = []
  const options = {
    onError: (error: unknown) => errors.push(error),
    onClose: (reason: CloseReason) => reasons.push(reason),
  }
  const server =
    transport === 'node'
      ? await nodeServer((req, res) => void sendEventStream(req, res, content, options))
      : await webServer((request) => new EventSourceResponse(content, { ...options, request }))
  const closed = () => waitFor('the stream to close', () => reasons, { until: (r) => r.length > 0 })
  return { url: server.url, errors, reasons, closed }
}

/** What the client received: name and parsed data per event. */
async function received(url: string) {
  return (await readEvents(url)).map(({ event, data, id }) => ({
    event,
    id,
    data: JSON.parse(data),
  }))
}

const transports = ['node', 'web'] as const

describe.each(libraries)('typedSource with $name', ({ name, contract }) => {
  describe.each(transports)('on the %s transport', (transport) => {
    test('valid events arrive, data as JSON: the schema output, strings quoted', async () => {
      const source = typedSource(contract, async function* () {
        yield { event: 'progress', data: { percent: 10 }, id: '1' }
        yield { event: 'message', data: 'two\nlines' }
        yield { event: 'done', data: { url: '/report' } }
      })
      const { url, errors, reasons, closed } = await serve(transport, source)
      expect(await received(url)).toEqual([
        { event: 'progress', id: '1', data: { percent: 10, note: '' } },
        { event: 'message', id: undefined, data: 'two\nlines' },
        { event: 'done', id: undefined, data: { url: '/report' } },
      ])
      await closed()
      expect(reasons).toEqual(['done'])
      expect(errors).toEqual([])
    })

    test('invalid data ends the stream through onError; it and what follows are never sent', async () => {
      let stopped = false
      const source = typedSource(contract, async function* () {
        try {
          yield { event: 'progress', data: { percent: 10 } }
          yield { event: 'progress', data: badProgress as never }
          yield { event: 'done', data: { url: '/never' } }
        } finally {
          stopped = true
        }
      })
      const { url, errors, reasons, closed } = await serve(transport, source)
      expect(await received(url)).toEqual([
        { event: 'progress', id: undefined, data: { percent: 10, note: '' } },
      ])
      await closed()
      expect(reasons).toEqual(['error'])
      expect(stopped).toBe(true)
      expect(errors).toHaveLength(1)
      const error = errors[0] as SseError
      expect(error.code).toBe('ERR_SSE_INVALID_DATA')
      expect(error.message).toMatch(
        new RegExp(
          `^Invalid data for event "progress": its ${name} schema found 1 issue: at percent`,
        ),
      )
    })
  })

  test('an event name not in the contract ends the stream naming it', async () => {
    const source = typedSource(contract, [
      { event: 'done', data: { url: '/a' } },
      { event: 'finished', data: {} } as never,
    ])
    const { url, errors, reasons, closed } = await serve('node', source)
    expect((await received(url)).map((event) => event.event)).toEqual(['done'])
    await closed()
    expect(reasons).toEqual(['error'])
    expect(errors).toMatchObject([
      {
        code: 'ERR_SSE_INVALID_EVENT',
        message:
          'Invalid event "finished": not in the contract; expected one of "progress", ' +
          '"message", "done".',
      },
    ])
  })

  test('a content function gets the stream context; a ReadableStream works too', async () => {
    const fromContext = typedSource(contract, async ({ lastEventId }) => [
      { event: 'message', data: `resumed from ${lastEventId ?? 'nothing'}` } as const,
    ])
    const first = await serve('web', fromContext)
    expect(await received(first.url)).toEqual([
      { event: 'message', id: undefined, data: 'resumed from nothing' },
    ])
    const stream = new ReadableStream<ContractInput<JobContract>>({
      start(controller) {
        controller.enqueue({ event: 'done', data: { url: '/stream' } })
        controller.close()
      },
    })
    const second = await serve('node', typedSource(contract, stream))
    expect(await received(second.url)).toEqual([
      { event: 'done', id: undefined, data: { url: '/stream' } },
    ])
  })
})

describe.each(asyncContracts)('typedSource with an async schema ($name)', ({ contract }) => {
  test.each(transports)(
    'events keep their order; a rejection ends the stream (%s)',
    async (transport) => {
      const source = typedSource(contract, function* () {
        for (const percent of [1, 2, 3]) {
          yield { event: 'progress', data: { percent } }
          yield { event: 'message', data: `after ${percent}` }
        }
        yield { event: 'progress', data: { percent: 13 } }
        yield { event: 'message', data: 'never' }
      })
      const { url, errors, reasons, closed } = await serve(transport, source)
      expect((await received(url)).map((event) => event.data)).toEqual([
        { percent: 1, note: '' },
        'after 1',
        { percent: 2, note: '' },
        'after 2',
        { percent: 3, note: '' },
        'after 3',
      ])
      await closed()
      expect(reasons).toEqual(['error'])
      expect(errors).toMatchObject([{ code: 'ERR_SSE_INVALID_DATA' }])
      expect((errors[0] as Error).message).toContain('unlucky')
    },
  )
})

describe('typedSource', () => {
  const contract = libraries[0]!.contract

  test('validate: false sends the data as given, still as JSON, and still checks names', async () => {
    const trusted = defineContract(contract.events, { validate: false })
    const sent = await serve(
      'node',
      typedSource(trusted, [
        { event: 'progress', data: { percent: 500, note: 'unchecked' } },
        { event: 'unknown', data: 1 } as never,
      ]),
    )
    expect(await received(sent.url)).toEqual([
      { event: 'progress', id: undefined, data: { percent: 500, note: 'unchecked' } },
    ])
    await sent.closed()
    expect(sent.errors).toMatchObject([{ code: 'ERR_SSE_INVALID_EVENT' }])
  })

  test('data JSON cannot carry is refused before the wire', async () => {
    const trusted = defineContract(contract.events, { validate: false })
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const sent = await serve(
      'web',
      typedSource(trusted, [
        { event: 'message', data: undefined as never },
        { event: 'message', data: 'never' },
      ]),
    )
    expect(await readEvents(sent.url)).toEqual([])
    await sent.closed()
    expect(sent.errors).toMatchObject([
      {
        code: 'ERR_SSE_INVALID_DATA',
        message:
          'Invalid data for event "message": expected a value JSON can carry, received undefined.',
      },
    ])
    const again = await serve(
      'web',
      typedSource(trusted, [{ event: 'done', data: cyclic as never }]),
    )
    expect(await readEvents(again.url)).toEqual([])
    await again.closed()
    expect(again.errors).toMatchObject([{ code: 'ERR_SSE_SERIALIZE' }])
    expect((again.errors[0] as Error).message).toMatch(
      /^Could not serialize the data of event "done" as JSON: /,
    )
  })

  test('bad arguments throw at once', () => {
    expect(() => typedSource({} as never, [])).toThrow(
      'Invalid option "contract": expected a contract made by defineContract(), received an object.',
    )
    expect(() => typedSource(contract, 'text' as never)).toThrow(
      expect.objectContaining({ code: 'ERR_SSE_INVALID_CONTENT' }),
    )
  })

  test('a content function returning something that is not a source fails the stream', async () => {
    const sent = await serve(
      'node',
      typedSource(contract, () => 42 as never),
    )
    await expect(readEvents(sent.url)).rejects.toThrow()
    await sent.closed()
    expect(sent.errors).toMatchObject([{ code: 'ERR_SSE_INVALID_CONTENT' }])
  })

  test('read by hand, it answers checked events and stops its source', async () => {
    let stopped = false
    const source = typedSource(
      contract,
      (async function* () {
        try {
          yield { event: 'message', data: 'a' } as const
          yield { event: 'message', data: 'b' } as const
        } finally {
          stopped = true
        }
      })(),
    ) as AsyncIterable<unknown>
    const iterator = source[Symbol.asyncIterator]()
    expect(await iterator.next()).toEqual({
      done: false,
      value: { event: 'message', data: '"a"', id: undefined, retry: undefined },
    })
    expect(await iterator.return?.()).toEqual({ done: true, value: undefined })
    expect(stopped).toBe(true)
  })
})
