import { afterEach, expect, test, vi } from 'vitest'
import { readEvents } from '../../src/testing.ts'
import { EXAMPLE_TEST_TIMEOUT, runExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)
vi.setConfig({ testTimeout: EXAMPLE_TEST_TIMEOUT })

test('load_simulations: N concurrent clients, live progress and a checked summary', async () => {
  const example = await runExample('demonstrations/production_scenarios/load_simulations.ts', {
    args: ['--clients', '20', '--events', '10', '--interval', '20'],
    env: { PROGRESS_MS: '50' },
    listen: false,
  })
  const exit = await example.exited
  const output = example.lines.join('\n')
  expect(exit, output).toEqual({ code: 0, signal: null })
  expect(output).toMatch(
    /^progress: \d+ connected, \d+ events, \d+ events\/s, server streams: \d+ open \/ \d+ total/m,
  )
  expect(output).toContain('  clients:          20 (20 completed, 0 failed)')
  expect(output).toContain('  events received:  200 of 200')
  expect(output).toMatch(/ {2}throughput: +\d+ events\/s/)
  expect(output).toMatch(/ {2}server: +peak \d+ open streams, 20 in all, 0 open now/)
})

test('load_simulations: server mode serves /events and /stats', async () => {
  const example = await runExample('demonstrations/production_scenarios/load_simulations.ts', {
    args: ['server'],
  })
  // Counted by the test itself, not by the example's own checker: ids 1..N, in order.
  const own = await readEvents(`${example.url}/events?count=4&interval=5`)
  expect(own.map((e) => e.id)).toEqual(['1', '2', '3', '4'])
  const client = await runExample('demonstrations/production_scenarios/load_simulations.ts', {
    args: ['client', '--url', example.url, '--clients', '5', '--events', '3', '--interval', '5'],
    listen: false,
  })
  expect((await client.exited).code).toBe(0)
  expect(client.lines).toContain('  events received:  15 of 15')
  // The server's count agrees with both: the example's 5 × 3 and the test's 4.
  const stats = (await (await fetch(`${example.url}/stats`)).json()) as Record<string, number>
  expect(stats).toMatchObject({ active: 0, total: 6, eventsSent: 19 })
})

test('network_interruption: reconnects with backoff and Last-Event-ID, losing nothing', async () => {
  const example = await runExample('demonstrations/production_scenarios/network_interruption.ts', {
    env: { TICK_MS: '20', BASE_MS: '20', RESTART_MS: '200', DELAY_MS: '100', TOTAL: '30' },
    listen: false,
  })
  const exit = await example.exited
  const output = example.lines.join('\n')
  expect(exit, output).toEqual({ code: 0, signal: null })
  for (const scenario of ['connection cut', '503 twice', 'server restart', 'slow server']) {
    expect(output).toContain(`scenario: ${scenario}`)
  }
  expect(output).toMatch(/HTTP 503/)
  expect(output).toMatch(/ECONNREFUSED|fetch failed/)
  expect(output).toMatch(/connected \(resuming after id \d+\)/)
  expect(output).toContain('result: received 30 events (1..30), 0 lost, 0 duplicated')
})

test('network_interruption: server and client modes; the test counts every event itself across a cut and two 503s', async () => {
  const file = 'demonstrations/production_scenarios/network_interruption.ts'
  const env = { TICK_MS: '20', BASE_MS: '20' }
  const server = await runExample(file, { args: ['server'], env })
  const client = await runExample(file, {
    args: ['client', '--url', `${server.url}/events`],
    env,
    listen: false,
  })
  await client.waitForLine(/^event 5: /)
  // The next two connections are refused, then every open stream is cut.
  expect((await fetch(`${server.url}/control?fail=2&cut=1`)).status).toBe(200)
  await client.waitForLine(/^client: connected \(resuming after id \d+\)$/)
  await client.waitForLine(/^event 15: /)
  // The client prints each event as it arrives: the test checks the sequence itself, without
  // the example's summary. Every id from 1, once each, in order, and the data matches the id.
  const received = client.lines.flatMap((line) => {
    const match = /^event (\d+): (.*)$/.exec(line)
    return match ? [[Number(match[1]), JSON.parse(match[2]!).n as number]] : []
  })
  expect(received.length).toBeGreaterThanOrEqual(15)
  expect(received).toEqual(received.map((_, i) => [i + 1, i + 1]))
  expect(client.lines.filter((line) => line.includes('connection failed: HTTP 503'))).toHaveLength(
    2,
  )
})
