import { afterEach, expect, test, vi } from 'vitest'
import { readEvents } from '../../src/testing.ts'
import { follow } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'
import { EXAMPLE_TEST_TIMEOUT, runExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)
vi.setConfig({ testTimeout: EXAMPLE_TEST_TIMEOUT })

test('client_disconnect: a disconnect is seen at once, cleaned up, and others go on', async () => {
  const example = await runExample('demonstrations/basic_patterns/client_disconnect.ts', {
    env: { TICK_MS: '30' },
  })
  // The staying client reads until the test is done with it (not a fixed count: on a busy
  // machine it could finish, and leave, before the server's status is read).
  const stay = follow(`${example.url}/events`)
  await example.waitForLine(/^\+ connection 1 added/)
  const leaving = await readEvents(`${example.url}/events`, { count: 2 })
  expect(leaving.map((e) => e.id)).toEqual(['1', '2'])
  await example.waitForLine(/^ {2}cleanup done for connection 2 \(disconnect\)$/)
  await example.waitForLine(
    /^- connection 2 removed \(disconnect\) after [\d.]+ s and \d+ events\. total: 1$/,
  )
  const status = (await (await fetch(`${example.url}/status`)).json()) as { active: number }
  expect(status.active).toBe(1)
  // The other connection goes on: two more events after the first one left, and at least 8.
  const atRemoval = stay.events.length
  await stay.until('the staying stream to go on', (e) => e.length >= Math.max(8, atRemoval + 2))
  await stay.stop()
  expect(stay.events.map((e) => e.id)).toEqual(stay.events.map((_, i) => String(i + 1)))
  await example.waitForLine(/^- connection 1 removed \(disconnect\)/)
})

test('graceful_shutdown: SIGTERM sends a farewell, ends streams and exits without hanging', async () => {
  const example = await runExample('demonstrations/basic_patterns/graceful_shutdown.ts', {
    env: { TICK_MS: '50', GRACE_MS: '2000' },
  })
  const tab = follow(`${example.url}/events`, { timeout: 15_000 })
  await tab.until('two events before the signal', (e) => e.length >= 2)
  example.child.kill('SIGTERM')
  // A clean end of the response (a reset would reject here, with its cause).
  await tab.ended()
  expect(tab.events.at(-1)).toMatchObject({
    event: 'shutdown',
    data: 'server is shutting down, goodbye',
  })
  // Does not hang: the example's grace is 2 s, so a process still there after the wait's
  // 10 s deadline is stuck, not slow.
  let exit: unknown
  void example.exited.then((result) => {
    exit = result
  })
  await waitFor('the example to exit after SIGTERM', () => exit)
  expect(exit).toEqual({ code: 0, signal: null })
  expect(example.lines).toContain('shutdown complete (open streams: 0); exiting')
})
