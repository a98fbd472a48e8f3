import { afterEach, expect, test, vi } from 'vitest'
import { readEvents } from '../../src/testing.ts'
import { follow } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'
import { EXAMPLE_TEST_TIMEOUT, runExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)
vi.setConfig({ testTimeout: EXAMPLE_TEST_TIMEOUT })

for (const platform of ['express', 'fastify'] as const) {
  test(`08_nest on ${platform}: the switched @Sse() Observable, resume, guard and 404 before the stream, disconnect, SIGTERM`, async () => {
    const example = await runExample('08_nest.ts', { env: { TICK_MS: '20', PLATFORM: platform } })

    // The Observable route resumes after the id the client sends; `type` is the event name.
    const prices = await readEvents(`${example.url}/prices`, {
      count: 2,
      headers: { 'last-event-id': '6' },
    })
    expect(prices.map((event) => [event.event, event.id, event.data])).toEqual([
      ['price', '7', '{"id":7,"price":100}'],
      ['price', '8', '{"id":8,"price":101}'],
    ])

    // The generator route resumes too, and its finally sees the disconnect.
    const resumed = await readEvents(`${example.url}/events`, {
      count: 2,
      headers: { 'last-event-id': '41' },
    })
    expect(resumed.map((event) => [event.id, event.data])).toEqual([
      ['42', 'tick 42'],
      ['43', 'tick 43'],
    ])
    const ended = await example.waitForLine(/^stream ended after id \d+ \(disconnect\)$/)
    expect(Number(/id (\d+)/.exec(ended)?.[1])).toBeGreaterThanOrEqual(43)

    // The guard refuses before the stream: Nest's own 403; the handler's 404 likewise.
    const denied = await fetch(`${example.url}/rooms/a`)
    expect(denied.status).toBe(403)
    expect(await denied.json()).toMatchObject({ statusCode: 403, message: 'Forbidden resource' })
    const missing = await fetch(`${example.url}/rooms/nowhere?token=letmein`)
    expect(missing.status).toBe(404)
    expect(await missing.json()).toMatchObject({ statusCode: 404, message: 'no room "nowhere"' })
    const room = await readEvents(`${example.url}/rooms/a?token=letmein`, { count: 1 })
    expect(room[0]).toMatchObject({ event: 'message', data: '{"room":"a","n":1}' })

    // SIGTERM: the open streams end cleanly (a reset would reject `ended`), then the process
    // exits on its own with 0.
    const tab = follow(`${example.url}/events`, { timeout: 15_000 })
    const feed = follow(`${example.url}/prices`, { timeout: 15_000 })
    await tab.until('two events before the signal', (events) => events.length >= 2)
    await feed.until('two prices before the signal', (events) => events.length >= 2)
    example.child.kill('SIGTERM')
    await tab.ended()
    await feed.ended()
    await example.waitForLine(/^stream ended after id \d+ \(shutdown\)$/)
    let exit: unknown
    void example.exited.then((result) => {
      exit = result
    })
    await waitFor('the example to exit after SIGTERM', () => exit)
    expect(exit).toEqual({ code: 0, signal: null })
    expect(example.lines).toContain('shutdown complete; exiting')
  })
}
