/**
 * The demo's operator view: the page's `metrics` events and `GET /metrics` come from the same
 * OpenTelemetry integration, and follow what real tabs do.
 */

import { afterEach, expect, test } from 'vitest'
import { iterateEvents, type SseEvent } from '../../src/testing.ts'
import { runExample, stopAllExamples } from '../examples/run-example.ts'
import { waitFor } from '../helpers/wait.ts'

afterEach(stopAllExamples)

const env = { CLOCK_MS: '100', STATS_MS: '100', JOB_STEP_MS: '5' }

function follow(url: string) {
  const events: SseEvent[] = []
  const controller = new AbortController()
  const reading = (async () => {
    for await (const event of iterateEvents(url, { timeout: 30_000, signal: controller.signal })) {
      events.push(event)
    }
  })().catch(() => {})
  return {
    events,
    /** The data of the last `metrics` event. */
    lastMetrics() {
      const last = events.findLast((e) => e.event === 'metrics')
      return last && (JSON.parse(last.data) as Record<string, unknown>)
    },
    async stop() {
      controller.abort()
      await reading
    },
  }
}

test('demo: the page receives the operator view; /metrics serves the same metrics to a scraper', async () => {
  const demo = await runExample('demo/server.ts', { env })
  const page = await (await fetch(demo.url)).text()
  expect(page).toContain('id="operator"')

  const first = follow(`${demo.url}/events`)
  const second = follow(`${demo.url}/events`)
  await waitFor('two open streams in the operator view', () => first.lastMetrics(), {
    until: (metrics) => metrics?.openStreams === 2,
  })
  const job = await fetch(`${demo.url}/job`, { method: 'POST' })
  await job.text()
  // Every job step is a broadcast to both tabs (and to the demo's own board subscription,
  // which is not a stream): their writes show in the latency histogram.
  const metrics = await waitFor(
    'broadcast deliveries in the operator view',
    () => first.lastMetrics(),
    {
      until: (m) => ((m?.latency as { count: number } | undefined)?.count ?? 0) >= 2,
    },
  )
  expect(metrics).toMatchObject({ broker: { live: 1 }, drops: {} })
  expect(metrics!.eventsSent).toBeGreaterThan(0)
  expect(metrics!.bytesSent).toBeGreaterThan(0)

  await second.stop()
  const scraped = await waitFor(
    'the closed tab on /metrics',
    async () => {
      const response = await fetch(`${demo.url}/metrics`)
      return response.text()
    },
    {
      until: (text) => /^oven_sse_streams_closed_total\{reason="disconnect"[^}]*\} 1$/m.test(text),
    },
  )
  expect(scraped).toMatch(/^oven_sse_streams_open\{[^}]*\} 1$/m)
  expect(scraped).toMatch(/^oven_sse_broker_feeds\{state="live"[^}]*\} 1$/m)
  await first.stop()
})
