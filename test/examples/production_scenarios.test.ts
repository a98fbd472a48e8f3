import { afterEach, expect, test } from 'vitest'
import { runExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)

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
  const client = await runExample('demonstrations/production_scenarios/load_simulations.ts', {
    args: ['client', '--url', example.url, '--clients', '5', '--events', '3', '--interval', '5'],
    listen: false,
  })
  expect((await client.exited).code).toBe(0)
  expect(client.lines).toContain('  events received:  15 of 15')
  const stats = (await (await fetch(`${example.url}/stats`)).json()) as Record<string, number>
  expect(stats).toMatchObject({ active: 0, total: 5, eventsSent: 15 })
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
