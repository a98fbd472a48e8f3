/**
 * Round trip: events generated at random, sent through each transport over a real socket, read
 * back by two independent clients (eventsource@4 and eventsource-parser@3), must be equal to
 * the events sent.
 */

import { EventSource } from 'eventsource'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type EventInit, EventSourceResponse } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { readEvents } from '../../src/testing.ts'
import { closeAllServers, nodeServer, type TestServer, webServer } from '../helpers/servers.ts'

interface Sent {
  data: string
  event?: string
  id?: string
}

/** Text built to stress the encoder: unicode (astral too), every line ending, look-alikes. */
const tricky = fc
  .array(
    fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 8 }),
      fc.constantFrom('\n', '\r', '\r\n', '\n\n', '\r\r', ' ', '  lead', ''),
      fc.constantFrom('data: fake', 'event: evil', 'id: 99', ': comment', 'retry: 1', ':'),
      fc.constantFrom('😀', '𝄞', 'é', '中文', '\u2028', '\u0085', '\t', '\uFEFF'),
    ),
    { maxLength: 10 },
  )
  .map((parts) => parts.join(''))

const singleLine = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
  .filter((s) => !/[\r\n\0]/.test(s))

const sentEvent: fc.Arbitrary<Sent> = fc.record(
  { data: tricky, event: singleLine, id: singleLine },
  { requiredKeys: ['data'] },
)

let batch: Sent[] = []
const END: EventInit = { event: 'end', data: 'end' }
let node: TestServer
let web: TestServer

beforeAll(async () => {
  node = await nodeServer((req, res) => {
    void sendEventStream(req, res, [...batch, END])
  })
  web = await webServer((request) => new EventSourceResponse([...batch, END], { request }))
})
afterAll(closeAllServers)

/** [spec] A client joins data lines with LF: CR and CRLF in data arrive as LF. */
const asReceived = (data: string) => data.replace(/\r\n|\r/g, '\n')

/** What eventsource-parser reports for `sent`. */
function parserView(sent: Sent[]) {
  return sent.map((e) => ({ data: asReceived(e.data), event: e.event, id: e.id }))
}

/** Reads one stream with the WHATWG EventSource of `eventsource@4`. */
function readWithEventSource(url: string, types: string[]) {
  return new Promise<Array<{ type: string; data: string; lastEventId: string }>>(
    (resolve, reject) => {
      const received: Array<{ type: string; data: string; lastEventId: string }> = []
      // EventSource reconnects after an error instead of failing: keep what it said.
      const errors: string[] = []
      const source = new EventSource(url)
      source.addEventListener('error', (event) => errors.push(String(event.message ?? event.type)))
      const timer = setTimeout(() => {
        source.close()
        reject(
          new Error(
            `EventSource: no end event within 10 s (${received.length} events; errors: ${JSON.stringify(errors)})`,
          ),
        )
      }, 10_000)
      const onEvent = (event: MessageEvent) => {
        received.push({ type: event.type, data: event.data, lastEventId: event.lastEventId })
      }
      for (const type of new Set(['message', ...types])) source.addEventListener(type, onEvent)
      source.addEventListener('end', () => {
        clearTimeout(timer)
        source.close()
        // One connection, read to its end: an error on the way (and the reconnect after it)
        // fails the round trip, even if the events came out right.
        if (errors.length > 0) reject(new Error(`EventSource errors: ${JSON.stringify(errors)}`))
        else resolve(received)
      })
    },
  )
}

/**
 * What `eventsource@4` reports for `sent`. Unlike a browser (whose `lastEventId` persists until
 * the next id), it gives each MessageEvent the event's own id, or `''`.
 */
function eventSourceView(sent: Sent[]) {
  return sent.map((e) => ({
    type: e.event ?? 'message',
    data: asReceived(e.data),
    lastEventId: e.id ?? '',
  }))
}

describe.each([
  ['sendEventStream (node:http)', () => node.url],
  ['EventSourceResponse (@hono/node-server)', () => web.url],
])('%s', (_name, url) => {
  test('random events survive the trip to eventsource-parser and EventSource', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          sentEvent.filter((e) => e.event !== 'end'),
          { minLength: 1, maxLength: 15 },
        ),
        async (events) => {
          batch = events
          const parsed = await readEvents(url())
          expect(parsed).toEqual([
            ...parserView(events),
            { data: 'end', event: 'end', id: undefined },
          ])
          const types = events.flatMap((e) => (e.event ? [e.event] : []))
          expect(await readWithEventSource(url(), types)).toEqual(eventSourceView(events))
        },
      ),
      { numRuns: 25 },
    )
  })

  test('1 MiB of data with every line ending', async () => {
    const chunk = 'line 😀 𝄞 data: x\r\nnext\rthird\n'
    const big = chunk.repeat(Math.ceil((1024 * 1024) / chunk.length))
    batch = [{ data: big, id: 'big' }, { data: '' }, { data: ' ' }]
    const parsed = await readEvents(url(), { timeout: 15_000 })
    expect(parsed.map((e) => e.data)).toEqual([asReceived(big), '', ' ', 'end'])
    const viaEventSource = await readWithEventSource(url(), [])
    expect(viaEventSource.map((e) => e.data)).toEqual([asReceived(big), '', ' '])
  })
})
