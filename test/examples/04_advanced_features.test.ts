import { connect } from 'node:net'
import { afterEach, expect, test, vi } from 'vitest'
import { iterateMessages, readEvents, type SseMessage } from '../../src/testing.ts'
import { waitFor } from '../helpers/wait.ts'
import { EXAMPLE_TEST_TIMEOUT, runExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)
vi.setConfig({ testTimeout: EXAMPLE_TEST_TIMEOUT })

// Pings and the send timeout at their least outside tests (1 s; the example is user code, so it
// does not use shortDurations()).
const env = { TICK_MS: '200', PING_MS: '1000', SEND_TIMEOUT_MS: '1000', MAX_STREAMS: '2' }

test('04_advanced_features: custom ping, errors as events, crash isolation, separator, headers, channel', async () => {
  const example = await runExample('04_advanced_features.ts', { env })
  const { url } = example

  // Custom ping: while idle, a two-line comment; then the events.
  const messages: SseMessage[] = []
  for await (const message of iterateMessages(`${url}/custom-ping`)) {
    messages.push(message)
    if (messages.filter((m) => m.type === 'event').length === 2) break
  }
  const comments = messages.flatMap((m) => (m.type === 'comment' ? [m.comment] : []))
  expect(comments).toContain('invisible ping at')
  expect(comments.some((c) => /^\d{4}-\d\d-\d\dT/.test(c))).toBe(true)
  const events = messages.flatMap((m) => (m.type === 'event' ? [m] : []))
  expect(events.map((e) => [e.id, e.event])).toEqual([
    ['1', 'custom'],
    ['2', 'custom'],
  ])

  const errors = await readEvents(`${url}/error-demo`)
  expect(errors.map((e) => e.event)).toEqual([
    'success',
    'success',
    'error',
    'success',
    'success',
    'fatal_error',
  ])

  // A crashing source ends its own stream; a stream opened beside it goes on.
  const bystander = readEvents(`${url}/custom-ping`, { count: 3 })
  const crashed = await readEvents(`${url}/crash`)
  expect(crashed.map((e) => e.data)).toEqual(['about to fail'])
  await example.waitForLine(/^crash: stream failed: database went away$/)
  await example.waitForLine(/^crash: closed \(error\)$/)
  expect((await bystander).map((e) => e.id)).toEqual(['1', '2', '3'])

  const raw = await (await fetch(`${url}/custom-separator`)).text()
  expect(raw).not.toContain('\r')
  expect(raw).toContain(
    'event: multiline\ndata: Line 1 of event 1\ndata: Line 2 of event 1\ndata: Line 3\n\n',
  )

  const proxy = await fetch(`${url}/proxy-friendly`)
  expect(proxy.headers.get('cache-control')).toBe('public, max-age=29')
  expect(proxy.headers.get('x-custom-header')).toBe('proxy-optimized')
  expect((await readEvents(proxy, { count: 1 }))[0]?.event).toBe('custom')
  await example.waitForLine(/^proxy-friendly: cleanup after disconnect$/)

  const produced = await readEvents(`${url}/channel`)
  expect(produced.map((e) => e.data)).toEqual(['Item 1', 'Item 2', 'Item 3', 'Item 4', 'Item 5'])
  await example.waitForLine(/^channel: closed \(done\)$/)
})

test('04_advanced_features: sendTimeout drops a client that stopped reading', async () => {
  const example = await runExample('04_advanced_features.ts', { env })
  const { port } = new URL(example.url)
  const socket = connect(Number(port), '127.0.0.1')
  try {
    socket.write(`GET /flood HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
    // Read the head and the first events, then stop reading, as a frozen client would.
    let received = 0
    socket.once('data', (chunk) => {
      socket.pause()
      received = chunk.length
    })
    await waitFor('the head and first events of /flood', () => received)
    await example.waitForLine(/^flood: closed \(timeout\)$/, 10_000)
  } finally {
    socket.destroy()
  }
})

test('04_advanced_features: the connection limit answers 503 with Retry-After', async () => {
  const example = await runExample('04_advanced_features.ts', { env })
  const first = new AbortController()
  const second = new AbortController()
  const a = await fetch(`${example.url}/limited`, { signal: first.signal })
  const b = await fetch(`${example.url}/limited`, { signal: second.signal })
  expect([a.status, b.status]).toEqual([200, 200])
  const refused = await fetch(`${example.url}/limited`)
  expect(refused.status).toBe(503)
  expect(refused.headers.get('retry-after')).toBe('5')
  await refused.text()
  await example.waitForLine(/^limited: closed \(rejected\), open: 2\/2$/)
  // The slot is given back as the stream ends, before its onClose prints this line (hence
  // "1/2" in it): one request must then get in. No retry loop.
  first.abort()
  await example.waitForLine(/^limited: closed \(disconnect\), open: 1\/2$/)
  const again = await fetch(`${example.url}/limited`)
  expect(again.status).toBe(200)
  await again.body?.cancel()
  second.abort()
})
