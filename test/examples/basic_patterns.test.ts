import { afterEach, expect, test } from 'vitest'
import { iterateEvents, readEvents, type SseEvent } from '../../src/testing.ts'
import { waitFor } from '../helpers/servers.ts'
import { runExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)

test('client_disconnect: a disconnect is seen at once, cleaned up, and others go on', async () => {
  const example = await runExample('demonstrations/basic_patterns/client_disconnect.ts', {
    env: { TICK_MS: '30' },
  })
  // The staying client reads until the test is done with it (not a fixed count: on a busy
  // machine it could finish, and leave, before the server's status is read).
  const stay = new AbortController()
  const stayed: SseEvent[] = []
  const staying = (async () => {
    try {
      for await (const event of iterateEvents(`${example.url}/events`, { signal: stay.signal })) {
        stayed.push(event)
      }
    } catch (error) {
      if (!stay.signal.aborted) throw error
    }
  })()
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
  const atRemoval = stayed.length
  await waitFor(() => stayed.length >= Math.max(8, atRemoval + 2), 10_000, 'the staying stream')
  stay.abort()
  await staying
  expect(stayed.map((e) => e.id)).toEqual(stayed.map((_, i) => String(i + 1)))
  await example.waitForLine(/^- connection 1 removed \(disconnect\)/)
})

test('graceful_shutdown: SIGTERM sends a farewell, ends streams and exits without hanging', async () => {
  const example = await runExample('demonstrations/basic_patterns/graceful_shutdown.ts', {
    env: { TICK_MS: '50', GRACE_MS: '2000' },
  })
  const received: SseEvent[] = []
  let ended = false
  const reading = (async () => {
    for await (const event of iterateEvents(`${example.url}/events`, { timeout: 15_000 })) {
      received.push(event)
    }
    ended = true
  })()
  const started = Date.now()
  while (received.length < 2 && Date.now() - started < 10_000) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  expect(received.length).toBeGreaterThanOrEqual(2)
  example.child.kill('SIGTERM')
  await reading
  expect(ended).toBe(true)
  expect(received.at(-1)).toMatchObject({
    event: 'shutdown',
    data: 'server is shutting down, goodbye',
  })
  const exit = await Promise.race([
    example.exited,
    new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 8000)),
  ])
  expect(exit).toEqual({ code: 0, signal: null })
  expect(example.lines).toContain('shutdown complete (open streams: 0); exiting')
})
