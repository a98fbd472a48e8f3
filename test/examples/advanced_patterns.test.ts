import { afterEach, expect, test, vi } from 'vitest'
import { readEvents } from '../../src/testing.ts'
import { EXAMPLE_TEST_TIMEOUT, runExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)
vi.setConfig({ testTimeout: EXAMPLE_TEST_TIMEOUT })

test('memory_channels: generator and channel give the same stream; producers merge and stop', async () => {
  const example = await runExample('demonstrations/advanced_patterns/memory_channels.ts', {
    env: { TICK_MS: '10' },
  })
  const { url } = example

  const fromGenerator = await readEvents(`${url}/generator`)
  const fromChannel = await readEvents(`${url}/memory-channel`)
  expect(fromGenerator.map((e) => e.data.replace('generator', 'X'))).toEqual(
    fromChannel.slice(0, 9).map((e) => e.data.replace(/producer prod-\d+/, 'X')),
  )
  expect(fromChannel.at(-1)).toMatchObject({ event: 'producer_complete' })

  const merged = await readEvents(`${url}/multi-producer`)
  expect(merged).toHaveLength(30)
  expect(merged.filter((e) => e.event === 'producer_complete')).toHaveLength(3)
  // Each producer's items arrive in its own order, interleaved with the others'.
  const byProducer = new Map<string, string[]>()
  for (const event of merged.filter((e) => e.event === 'production_data')) {
    const [producer, item] = event.id!.split(/-(?=\d+$)/) as [string, string]
    byProducer.set(producer, [...(byProducer.get(producer) ?? []), item])
  }
  expect([...byProducer.values()]).toEqual(
    Array.from({ length: 3 }, () => ['1', '2', '3', '4', '5', '6', '7', '8', '9']),
  )

  // The stream passes on one event per PACE_MS, the producer could send all 20 at once: with
  // two slots it must wait for room, and nothing is lost or reordered on the way.
  const fast = await readEvents(`${url}/backpressure`)
  const summary = fast.at(-1)!
  expect(summary.event).toBe('backpressure_summary')
  expect(fast.slice(0, -1).map((e) => [e.event, e.id, e.data])).toEqual(
    Array.from({ length: 20 }, (_, i) => ['fast_data', String(i), String(i)]),
  )
  const { sent, capacity, waits } = JSON.parse(summary.data)
  expect({ sent, capacity }).toEqual({ sent: 20, capacity: 2 })
  // Every send after the first few finds the channel full: the consumer takes one item per
  // timer tick, the producer refills in between.
  expect(waits).toBeGreaterThan(0)
  expect(waits).toBeLessThanOrEqual(20)
  await example.waitForLine(
    new RegExp(`^backpressure: producer sent 20 items and waited for room ${waits} times`),
  )
})

test('memory_channels: a disconnect stops the producer', async () => {
  const example = await runExample('demonstrations/advanced_patterns/memory_channels.ts', {
    env: { TICK_MS: '60000' },
  })
  const first = await readEvents(`${example.url}/memory-channel`, { count: 1 })
  expect(first[0]).toMatchObject({ id: 'prod-1-1', event: 'production_data' })
  await example.waitForLine(/^producer prod-1: stopped \(aborted\)$/, 5000)
})

test('error_recovery: retries, fallbacks, fatal errors, resume from Last-Event-ID', async () => {
  const example = await runExample('demonstrations/advanced_patterns/error_recovery.ts', {
    env: { TICK_MS: '5', ITEMS: '20', FAILURE_RATE: '0.4', SEED: '7' },
  })
  const events = await readEvents(`${example.url}/error-recovery`)
  const outcomes = events.filter((e) => e.event === 'result' || e.event === 'fallback')
  // Every item has exactly one outcome, in order, whatever failed on the way.
  expect(outcomes.map((e) => e.id)).toEqual(Array.from({ length: 20 }, (_, i) => String(i + 1)))
  expect(events.some((e) => e.event === 'recovery')).toBe(true)
  const completion = JSON.parse(events.at(-1)!.data)
  expect(events.at(-1)!.event).toBe('completion')
  expect(completion.processed + completion.fallbacks).toBe(20)
  expect(completion.fallbacks).toBe(outcomes.filter((e) => e.event === 'fallback').length)

  const resumed = await readEvents(`${example.url}/error-recovery`, { lastEventId: '17' })
  expect(resumed.filter((e) => e.id).map((e) => e.id)).toEqual(['18', '19', '20'])

  const fatal = await runExample('demonstrations/advanced_patterns/error_recovery.ts', {
    env: { TICK_MS: '5', FAILURE_RATE: '0', FATAL_AT: '4' },
  })
  const ended = await readEvents(`${fatal.url}/error-recovery`)
  expect(ended.map((e) => e.event)).toEqual([
    'result',
    'result',
    'result',
    'fatal_error',
    'completion',
  ])
  expect(JSON.parse(ended.at(-1)!.data)).toEqual({
    processed: 3,
    recovered: 0,
    fallbacks: 0,
    fatal: true,
  })
})

test('error_recovery: the circuit breaker opens, serves fallbacks, probes and closes', async () => {
  const example = await runExample('demonstrations/advanced_patterns/error_recovery.ts', {
    env: { TICK_MS: '10', ITERATIONS: '80', OUTAGE: '4-6', OPEN_MS: '500' },
  })
  const events = await readEvents(`${example.url}/circuit-breaker`, { timeout: 10_000 })
  const kinds = events.map((e) => e.event)
  const opened = kinds.indexOf('circuit_open')
  expect(kinds.slice(0, opened + 1)).toEqual([
    'success',
    'success',
    'success',
    'service_error',
    'service_error',
    'service_error',
    'circuit_open',
  ])
  // While open: no calls, the last good value as a fallback.
  expect(kinds[opened + 1]).toBe('fallback')
  expect(JSON.parse(events[opened + 1]!.data)).toEqual({ value: 1003, stale: true })
  const probe = kinds.indexOf('circuit_half_open')
  expect(probe).toBeGreaterThan(opened)
  expect(kinds.slice(probe, probe + 3)).toEqual(['circuit_half_open', 'circuit_closed', 'success'])
  expect(kinds.at(-1)).toBe('success')
})

test('custom_protocols: typed task and health protocols over Hono', async () => {
  const example = await runExample('demonstrations/advanced_patterns/custom_protocols.ts', {
    env: { TICK_MS: '10', CYCLES: '3' },
  })
  const task = await readEvents(`${example.url}/protocols/task`)
  expect(task[0]).toMatchObject({ event: 'hello' })
  expect(JSON.parse(task[0]!.data)).toEqual({
    protocol: 'task',
    version: 1,
    events: ['task_progress', 'task_complete'],
  })
  const progress = task.filter((e) => e.event === 'task_progress').map((e) => JSON.parse(e.data))
  expect(progress.map((p) => p.percent)).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
  expect(progress.at(-1)).toEqual({ taskId: 'task-1', stage: 'done', percent: 100 })
  expect(task.at(-1)?.event).toBe('task_complete')

  const resumed = await readEvents(`${example.url}/protocols/task`, { lastEventId: '70' })
  expect(resumed.filter((e) => e.event === 'task_progress').map((e) => e.id)).toEqual([
    '80',
    '90',
    '100',
  ])

  const health = await readEvents(`${example.url}/protocols/health`)
  const updates = health.filter((e) => e.event === 'health_update').map((e) => JSON.parse(e.data))
  expect(updates).toHaveLength(12)
  for (const update of updates) {
    expect(update).toEqual({
      service: expect.any(String),
      status: expect.stringMatching(/^(ok|degraded)$/),
      cpu: expect.any(Number),
      memoryMb: expect.any(Number),
      latencyMs: expect.any(Number),
    })
  }

  const unknown = await fetch(`${example.url}/protocols/nope`)
  expect(unknown.status).toBe(400)
  expect(await unknown.json()).toEqual({
    error: 'unknown protocol "nope"',
    supported: ['task', 'health'],
  })
})
