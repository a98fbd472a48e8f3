/**
 * examples/05_prometheus_metrics.ts, run as a reader runs it: real clients stream from it, then
 * a real HTTP request scrapes `/metrics`, and the counts match what the clients saw.
 */

import { get } from 'node:http'
import { afterEach, expect, test } from 'vitest'
import { runExample, stopAllExamples } from '../examples/run-example.ts'
import { waitFor } from '../helpers/wait.ts'

const leaves: Array<() => void> = []
afterEach(async () => {
  for (const leave of leaves.splice(0)) leave()
  await stopAllExamples()
})

/** Prometheus text format -> value by `name{labels}` (the scope label left out). */
async function scrape(url: string): Promise<Map<string, number>> {
  const response = await fetch(`${url}/metrics`)
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toMatch(/^text\/plain/)
  const out = new Map<string, number>()
  for (const line of (await response.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!match) throw new Error(`not a sample line: ${line}`)
    const labels = (match[2] ?? '')
      .split(',')
      .filter((label) => label !== '' && !label.startsWith('otel_scope_name='))
      .join(',')
    out.set(labels ? `${match[1]}{${labels}}` : match[1]!, Number(match[3]))
  }
  return out
}

/** Streams `path` raw, counting bytes and `data:` lines, until it ends or `leave()`. */
function client(url: string, path: string) {
  const seen = { bytes: 0, data: [] as string[], ended: false }
  let text = ''
  const request = get(`${url}${path}`, (res) => {
    res.on('data', (chunk: Buffer) => {
      seen.bytes += chunk.byteLength
      text += chunk.toString('utf8')
      seen.data = [...text.matchAll(/^data: (.*)$/gm)].map((m) => m[1]!)
    })
    res.on('end', () => {
      seen.ended = true
    })
  })
  request.on('error', () => {})
  const leave = () => request.destroy()
  leaves.push(leave)
  return { seen, leave }
}

test('05_prometheus_metrics: /metrics counts what the clients received', async () => {
  const example = await runExample('05_prometheus_metrics.ts')
  const { url } = example
  const listeners = [0, 1, 2].map(() => client(url, '/events'))
  // The scrape itself says when all three are open.
  await waitFor('three open streams on /metrics', () => scrape(url), {
    until: (metrics) => metrics.get('oven_sse_streams_open') === 3,
  })
  const published = await fetch(`${url}/publish?count=5`, { method: 'POST' })
  expect(published.status).toBe(202)
  await published.text()
  const finite = client(url, '/stream?n=4')
  await waitFor(
    'every client to have its events',
    () => [...listeners.map((c) => c.seen.data.length), finite.seen.ended],
    { until: ([a, b, c, ended]) => a === 5 && b === 5 && c === 5 && ended === true },
  )
  for (const listener of listeners) listener.leave()

  const metrics = await waitFor('the three disconnects on /metrics', () => scrape(url), {
    until: (m) => m.get('oven_sse_streams_closed_total{reason="disconnect"}') === 3,
  })
  const everyone = [...listeners, finite]
  expect(metrics.get('oven_sse_streams_open')).toBe(0)
  expect(metrics.get('oven_sse_streams_closed_total{reason="done"}')).toBe(1)
  expect(metrics.get('oven_sse_events_sent_total')).toBe(
    everyone.reduce((sum, c) => sum + c.seen.data.length, 0),
  )
  expect(metrics.get('oven_sse_bytes_sent_total')).toBe(
    everyone.reduce((sum, c) => sum + c.seen.bytes, 0),
  )
  expect(metrics.get('oven_sse_broadcast_delivery_duration_count')).toBe(15)
  expect(metrics.get('oven_sse_broker_feeds{state="live"}')).toBe(1)
  expect(metrics.get('oven_sse_stream_duration_count')).toBe(4)
})
