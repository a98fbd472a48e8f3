import { afterEach, expect, test, vi } from 'vitest'
import { readEvents } from '../../src/testing.ts'
import { follow } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'
import { EXAMPLE_TEST_TIMEOUT, runBunExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)
vi.setConfig({ testTimeout: EXAMPLE_TEST_TIMEOUT })

test("09_elysia on Bun: resume, a hook's header, 401 before the stream, disconnect, SIGTERM", async () => {
  const example = await runBunExample('09_elysia.ts', { env: { TICK_MS: '20' } })

  // Resumes after the id the client sends; the onBeforeHandle hook's header rides along.
  const response = await fetch(`${example.url}/events`, { headers: { 'last-event-id': '41' } })
  expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
  expect(response.headers.get('x-powered-by')).toBe('elysia + oven-sse')
  const resumed = await readEvents(response, { count: 2 })
  expect(resumed.map((event) => [event.id, event.data])).toEqual([
    ['42', 'tick 42'],
    ['43', 'tick 43'],
  ])
  // readEvents hung up after 2 events: the generator's finally saw the disconnect.
  // (The source may have made an event or two more before the hang-up reached it.)
  const ended = await example.waitForLine(/^stream ended after id \d+ \(disconnect\)$/)
  expect(Number(/id (\d+)/.exec(ended)?.[1])).toBeGreaterThanOrEqual(43)

  // The authorisation check throws before the stream: Elysia's own 401, as plain text.
  const denied = await fetch(`${example.url}/rooms/a`)
  expect(denied.status).toBe(401)
  expect(await denied.text()).toBe('a token is required')
  const room = await readEvents(`${example.url}/rooms/a?token=letmein`, { count: 1 })
  expect(room[0]).toMatchObject({ event: 'message', data: '{"room":"a","n":1}' })

  // SIGTERM: the open stream ends cleanly (a reset would reject `ended`), then the process
  // exits on its own.
  const tab = follow(`${example.url}/events`, { timeout: 15_000 })
  await tab.until('two events before the signal', (events) => events.length >= 2)
  example.child.kill('SIGTERM')
  await tab.ended()
  await example.waitForLine(/^stream ended after id \d+ \(shutdown\)$/)
  let exit: unknown
  void example.exited.then((result) => {
    exit = result
  })
  await waitFor('the example to exit after SIGTERM', () => exit)
  expect(exit).toEqual({ code: 0, signal: null })
  expect(example.lines).toContain('shutdown complete; exiting')
})
