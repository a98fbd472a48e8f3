/**
 * A broadcaster's event is encoded to UTF-8 once per process and its bytes are written by every
 * subscriber's stream. These check that the bytes are exact (any text, any separator, across
 * slab boundaries), that batches keep the order of shared and own output, and that no stream
 * can change or take away what another sends: the web transport copies what reaches a reader.
 */

import { afterEach, expect, test } from 'vitest'
import { EventSourceResponse, ServerSentEvent } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { readEvents } from '../../src/testing.ts'
import { closeHubs, newHub } from '../helpers/hubs.ts'
import { closeAllServers, nodeServer, webServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'

afterEach(async () => {
  await closeHubs()
  await closeAllServers()
})

const utf8 = new TextEncoder()
const strict = new TextDecoder('utf-8', { fatal: true })

/** Texts of every width: ASCII, 2-, 3- and 4-byte characters, lengths across slab boundaries. */
function texts(count: number): string[] {
  const pieces = ['a', 'é', '€', '漢', '😀', '\u0000', 'z']
  return Array.from({ length: count }, (_, i) => {
    let text = `${i}:`
    for (let k = 0; k < (i * 37) % 900; k++) text += pieces[(i + k) % pieces.length]
    return text
  })
}

test('bytes() is the UTF-8 of encode(), for every separator, across slabs and for large events', () => {
  const all = [...texts(400), 'x'.repeat(5000), '😀'.repeat(3000)]
  for (const sep of ['\r\n', '\n', '\r'] as const) {
    for (const data of all) {
      const event = new ServerSentEvent({ data, event: 'e' }).share()
      const bytes = event.bytes(sep)
      // Same length and the same text back (a wrong byte would decode to U+FFFD or another
      // character): byte for byte equal, without a slow element-wise compare.
      expect(bytes.byteLength).toBe(utf8.encode(event.encode(sep)).byteLength)
      expect(strict.decode(bytes)).toBe(event.encode(sep))
    }
  }
  // Changing the separator re-encodes; the earlier bytes are unchanged.
  const event = new ServerSentEvent({ data: 'é' }).share()
  const crlf = event.bytes('\r\n')
  const copy = crlf.slice()
  expect(new TextDecoder().decode(event.bytes('\n'))).toBe('data: é\n\n')
  expect(crlf).toEqual(copy)
})

test('node path: every subscriber receives every event exactly, batched or one at a time', async () => {
  const hub = newHub()
  const server = await nodeServer((req, res) => {
    void sendEventStream(req, res, (ctx) => hub.subscribe('t', ctx), { ping: false })
  })
  const sent = texts(300)
  const clients = Array.from({ length: 8 }, () =>
    readEvents(server.url, { count: sent.length, timeout: 20_000 }),
  )
  await waitFor('8 subscribers', () => hub.subscribers('t'), { until: (n) => n === 8 })
  // The first half back to back (batched per stream), the rest one by one (a lone event's
  // bytes are written as they are).
  for (const text of sent.slice(0, 150)) void hub.publish('t', text)
  for (const text of sent.slice(150)) await hub.publish('t', text)
  for (const events of await Promise.all(clients)) {
    expect(events.map((event) => event.data)).toEqual(sent)
  }
})

test("a stream mixing a subscription's events with its own keeps their order", async () => {
  const hub = newHub()
  const server = await nodeServer((req, res) => {
    void sendEventStream(
      req,
      res,
      async function* (ctx) {
        for await (const event of hub.subscribe('t', ctx)) {
          yield event
          yield { event: 'note', data: `after ${event.data}` }
        }
      },
      { ping: false },
    )
  })
  const read = readEvents(server.url, { count: 40 })
  await waitFor('one subscriber', () => hub.subscribers('t'), { until: (n) => n === 1 })
  for (let i = 0; i < 20; i++) void hub.publish('t', `é${i}`)
  const events = await read
  expect(events.map((event) => event.data)).toEqual(
    Array.from({ length: 20 }, (_, i) => [`é${i}`, `after é${i}`]).flat(),
  )
})

test('web path: a reader that changes or transfers its chunks cannot touch another stream', async () => {
  const hub = newHub()
  const rogue = hub.subscribe('t')
  const victim = hub.subscribe('t')
  await Promise.all([rogue.ready, victim.ready])
  const rogueReader = new EventSourceResponse(rogue, { ping: false }).body!.getReader()
  const sent = texts(60)
  // The victim reads all along, so each event it is sent alone reaches it as its own chunk.
  const victimEvents = readEvents(new EventSourceResponse(victim, { ping: false }), {
    count: sent.length,
  })
  const decoder = new TextDecoder()
  let seen = ''
  /** Reads the rogue stream up to `data`, doing to each chunk what a careless consumer might. */
  const rogueReadsTo = async (data: string) => {
    while (!seen.includes(`data: ${data}\r\n`)) {
      const { value, done } = await rogueReader.read()
      if (done) throw new Error(`the rogue stream ended before ${data}`)
      seen += decoder.decode(value, { stream: true })
      value.fill(0)
      structuredClone(value, { transfer: [value.buffer] })
      expect(value.byteLength).toBe(0)
    }
  }
  // One event at a time, each read (and spoiled) by the rogue before the next: lone events.
  for (const text of sent.slice(0, 40)) {
    await hub.publish('t', text)
    await rogueReadsTo(text)
  }
  // Then a burst: batches.
  for (const text of sent.slice(40)) void hub.publish('t', text)
  await rogueReadsTo(sent.at(-1)!)
  await rogueReader.cancel()
  expect((await victimEvents).map((event) => event.data)).toEqual(sent)
  // A new subscriber replaying the history gets the same bytes again, intact.
  const replayed = hub.subscribe('t', { lastEventId: (await victimEvents)[0]!.id })
  const later = await readEvents(new EventSourceResponse(replayed, { ping: false }), {
    count: sent.length - 1,
  })
  expect(later.map((event) => event.data)).toEqual(sent.slice(1))
})

test('web path over a real server: unicode broadcast arrives exactly', async () => {
  const hub = newHub()
  const server = await webServer(
    (request) => new EventSourceResponse((ctx) => hub.subscribe('t', ctx), { request }),
  )
  const sent = texts(100)
  const clients = Array.from({ length: 4 }, () =>
    readEvents(server.url, { count: sent.length, timeout: 20_000 }),
  )
  await waitFor('4 subscribers', () => hub.subscribers('t'), { until: (n) => n === 4 })
  for (const text of sent) void hub.publish('t', text)
  for (const events of await Promise.all(clients)) {
    expect(events.map((event) => event.data)).toEqual(sent)
  }
})
