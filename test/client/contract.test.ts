/**
 * Typed events from a contract: one `defineContract` shared by the server (`typedSource`) and
 * the client (`contract` option), with zod, valibot and arktype. The client parses each event's
 * JSON data and runs it through the schema (output types, defaults and transforms included);
 * an event not in the contract or data the schema rejects ends the stream with the schema's own
 * issues, the position left before it; an async schema keeps the order of events.
 */

import { type } from 'arktype'
import * as v from 'valibot'
import { afterEach, describe, expect, expectTypeOf, test } from 'vitest'
import { z } from 'zod'
import { CLIENT_END_EVENT, CLIENT_RESET_EVENT } from '../../src/client/typed.ts'
import { connect, type TypedClientEvent } from '../../src/client.ts'
import { defineContract, END_EVENT, RESET_EVENT, typedSource } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { readAll, recordingServer, SSE_HEAD } from './support.ts'

afterEach(closeAllServers)

const contracts = {
  zod: defineContract({
    progress: z.object({ percent: z.number(), note: z.string().default('none') }),
    done: z.object({ url: z.string() }),
  }),
  valibot: defineContract({
    progress: v.object({ percent: v.number(), note: v.optional(v.string(), 'none') }),
    done: v.object({ url: v.string() }),
  }),
  arktype: defineContract({
    progress: type({ percent: 'number', note: 'string = "none"' }),
    done: type({ url: 'string' }),
  }),
}

describe.each(Object.entries(contracts))('with %s', (_name, jobEvents) => {
  test('the server and the client share one contract: events arrive typed and parsed', async () => {
    const server = await nodeServer((req, res) => {
      void sendEventStream(
        req,
        res,
        typedSource(jobEvents, async function* () {
          yield { event: 'progress', id: '1', data: { percent: 50 } }
          yield { event: 'done', id: '2', data: { url: '/result' } }
        }),
      )
    })
    const seen: number[] = []
    const stream = connect(server.url, {
      contract: jobEvents,
      endEvents: ['done'],
      on: { progress: (event) => seen.push(event.data.percent) },
    })
    const events = await readAll(stream)
    expect(events).toEqual([
      { event: 'progress', data: { percent: 50, note: 'none' }, id: '1', lastEventId: '1' },
      { event: 'done', data: { url: '/result' }, id: '2', lastEventId: '2' },
    ])
    expect(seen).toEqual([50])
    for (const event of events) {
      if (event.event === 'progress') expectTypeOf(event.data.percent).toEqualTypeOf<number>()
      if (event.event === 'done') expectTypeOf(event.data.url).toEqualTypeOf<string>()
    }
  })
})

test('data the schema rejects ends the stream with its issues; the position stays before it', async () => {
  const server = await recordingServer((_req, res) => {
    res
      .writeHead(200, SSE_HEAD)
      .end(
        'id: 1\nevent: progress\ndata: {"percent":10}\n\n' +
          'id: 2\nevent: progress\ndata: {"percent":"twenty"}\n\n' +
          'id: 3\nevent: progress\ndata: {"percent":30}\n\n',
      )
  })
  const received: unknown[] = []
  const stream = connect(server.url, {
    contract: contracts.zod,
    onEvent: (event) => received.push(event.data),
  })
  const info = await stream.closed
  expect(received).toEqual([{ percent: 10, note: 'none' }])
  expect(info.reason).toBe('error')
  expect(info.lastEventId).toBe('1')
  expect(info.error).toMatchObject({ code: 'ERR_SSE_INVALID_DATA' })
  expect((info.error as Error).message).toMatch(
    /^Invalid data for event "progress": its zod schema found 1 issue: at percent: /,
  )
  expect(server.requests).toHaveLength(1) // not retried
})

test('an event not in the contract, and data that is not JSON, are refused by name', async () => {
  const server = await recordingServer((_req, res, request) => {
    const body =
      request.path === '/unknown'
        ? 'event: progres\ndata: {}\n\n'
        : 'event: done\ndata: /result\n\n'
    res.writeHead(200, SSE_HEAD).end(body)
  })
  const unknown = await connect(`${server.url}/unknown`, { contract: contracts.zod }).closed
  expect(unknown.error).toMatchObject({ code: 'ERR_SSE_INVALID_EVENT' })
  expect((unknown.error as Error).message).toBe(
    'Invalid event "progres": not in the contract; expected one of "progress", "done".',
  )
  const notJson = await connect(`${server.url}/text`, { contract: contracts.zod }).closed
  expect(notJson.error).toMatchObject({ code: 'ERR_SSE_INVALID_DATA' })
  expect((notJson.error as Error).message).toBe(
    `Invalid data for event "done": expected JSON (the data of a contract's events is JSON), ` +
      `received string "/result".`,
  )
  expect(() => connect(server.url, { contract: { progress: z.number() } as never })).toThrow(
    'Invalid option "contract": expected a contract made by defineContract(), received an object.',
  )
})

test("Oven's control events pass through any contract, typed", async () => {
  expect([CLIENT_END_EVENT, CLIENT_RESET_EVENT]).toEqual([END_EVENT, RESET_EVENT])
  const server = await recordingServer((_req, res) => {
    res
      .writeHead(200, SSE_HEAD)
      .end(
        'event: oven-reset\ndata: {"reason":"expired","topics":["jobs"]}\n\n' +
          'event: oven-end\ndata: {"reason":"done"}\n\n',
      )
  })
  const events = await readAll(connect(server.url, { contract: contracts.zod }))
  const reasons = events.map((event) => {
    if (event.event === 'oven-end') return `end ${event.data.reason}`
    if (event.event === 'oven-reset') return `reset ${event.data.reason} ${event.data.topics}`
    return 'other'
  })
  expect(reasons).toEqual(['reset expired jobs', 'end done'])
  expectTypeOf<TypedClientEvent<typeof contracts.zod>['event']>().toEqualTypeOf<
    'progress' | 'done' | 'oven-end' | 'oven-reset'
  >()
})

test('an async schema keeps the order of events, and the reconnect resumes after the last delivered', async () => {
  // An async refinement whose checks settle in reverse order of arrival.
  const slowFirst = defineContract({
    step: z.object({ n: z.number() }).refine(
      async ({ n }) => {
        await new Promise((resolve) => setTimeout(resolve, n % 2 === 1 ? 20 : 0))
        return true
      },
      { message: 'never' },
    ),
  })
  const server = await recordingServer((_req, res, request, index) => {
    res.writeHead(200, SSE_HEAD)
    if (index === 0) {
      let body = 'retry: 1\n'
      for (let n = 1; n <= 6; n++) body += `id: ${n}\nevent: step\ndata: {"n":${n}}\n\n`
      res.end(body)
      return
    }
    expect(request.headers['last-event-id']).toBe('6')
    res.end('event: oven-end\ndata: {"reason":"done"}\n\n')
  })
  const events = await readAll(connect(server.url, { contract: slowFirst, jitter: 0 }))
  expect(events.map((event) => event.lastEventId)).toEqual(['1', '2', '3', '4', '5', '6', '6'])
  expect(server.requests.map((r) => r.headers['last-event-id'])).toEqual([undefined, '6'])
})
