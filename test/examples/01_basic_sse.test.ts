import { afterEach, expect, test, vi } from 'vitest'
import { readEvents, readMessages } from '../../src/testing.ts'
import { OPENING_MESSAGE } from '../helpers/streams.ts'
import { EXAMPLE_TEST_TIMEOUT, runExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)
vi.setConfig({ testTimeout: EXAMPLE_TEST_TIMEOUT })

test('01_basic_sse: quick start, ranges, every event field, disconnect logging', async () => {
  const example = await runExample('01_basic_sse.ts', { env: { TICK_MS: '10' } })

  const numbers = await readEvents(`${example.url}/numbers`)
  expect(numbers.map((event) => event.data)).toEqual(
    Array.from({ length: 10 }, (_, i) => `Event ${i}`),
  )

  const range = await readEvents(`${example.url}/range/3/5`)
  expect(range.map((event) => event.data)).toEqual(['Number: 3', 'Number: 4', 'Number: 5'])

  const fields = await readMessages(`${example.url}/fields`)
  expect(fields).toEqual([
    OPENING_MESSAGE,
    { type: 'event', data: 'a plain string is sent as data', event: undefined, id: undefined },
    { type: 'event', data: 'named event', event: 'update', id: '1' },
    { type: 'event', data: '{"user":"ada","n":1}', event: undefined, id: undefined },
    { type: 'event', data: 'line one\nline two', event: undefined, id: undefined },
    { type: 'comment', comment: 'a comment: clients ignore it, proxies see traffic' },
    { type: 'retry', retry: 3000 },
    // A client applies `retry:` as it reads the line, before the event is dispatched.
    { type: 'retry', retry: 5000 },
    { type: 'event', data: 'Custom message', event: 'notification', id: 'msg-123' },
  ])

  const endless = await readEvents(`${example.url}/endless`, { count: 3 })
  expect(endless.map((event) => [event.id, event.data])).toEqual([
    ['1', 'Event #1'],
    ['2', 'Event #2'],
    ['3', 'Event #3'],
  ])
  // readEvents hung up after 3 events: the generator's finally block reports it.
  await example.waitForLine(/^Client disconnected after \d+ events \(disconnect\)$/)
})
