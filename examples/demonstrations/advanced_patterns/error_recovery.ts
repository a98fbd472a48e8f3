/**
 * Demonstration — error recovery: retries, fallback events and a circuit breaker.
 *
 * A stream that depends on something flaky should not die with it. Failures the client can
 * understand are sent as events; only what cannot be handled ends the stream.
 *
 * /error-recovery
 *   Processes ITEMS items, one every TICK_MS. Each attempt may fail (FAILURE_RATE, from a seeded
 *   random generator so a run can be replayed with SEED):
 *   - a failure is retried with exponential backoff: `event: recovery` tells the client;
 *   - an item that still fails after 3 attempts gets `event: fallback` with a default value;
 *   - item FATAL_AT (if set) fails fatally: `event: fatal_error`, and the stream ends;
 *   - at the end, `event: completion` with the counts.
 *   Results carry `id: <item>`: a client that reconnects resumes after its Last-Event-ID.
 *
 * /circuit-breaker
 *   Calls an upstream service every TICK_MS; the service is down for calls OUTAGE (e.g. 4-8).
 *   After 3 failures in a row the breaker opens: no calls for OPEN_MS, the client gets the last
 *   good value as `event: fallback`. Then one probe call (half-open): success closes the
 *   breaker, failure opens it again.
 *
 * Run:  npx tsx examples/demonstrations/advanced_patterns/error_recovery.ts
 * Then: curl -N http://127.0.0.1:8000/error-recovery
 *       curl -N http://127.0.0.1:8000/circuit-breaker
 *
 * Environment: PORT (8000), TICK_MS (500), ITEMS (20), FAILURE_RATE (0.2), SEED (42),
 * FATAL_AT (none), ITERATIONS (30), OUTAGE (4-8), OPEN_MS (2000).
 */

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { type EventInit, type StreamContext, sendEventStream } from '../../../src/node.ts'

const env = process.env
const tick = Number(env.TICK_MS ?? 500)
const items = Number(env.ITEMS ?? 20)
const failureRate = Number(env.FAILURE_RATE ?? 0.2)
const seed = Number(env.SEED ?? 42)
const fatalAt = env.FATAL_AT ? Number(env.FATAL_AT) : undefined
const iterations = Number(env.ITERATIONS ?? 30)
const [outageFrom, outageTo] = (env.OUTAGE ?? '4-8').split('-').map(Number) as [number, number]
const openFor = Number(env.OPEN_MS ?? 2000)

/** A small seeded random generator (mulberry32), so a run can be replayed. */
function random(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

class TransientError extends Error {}
class FatalError extends Error {}

// ---------------------------------------------------------------------------------------------
// Retry with backoff, then fall back

async function* errorRecovery({ signal, lastEventId }: StreamContext) {
  const chance = random(seed)
  const work = async (item: number): Promise<number> => {
    if (item === fatalAt) throw new FatalError(`item ${item}: storage is corrupt`)
    if (chance() < failureRate) throw new TransientError(`item ${item}: upstream timed out`)
    return item * item
  }
  // Resume after the last item the client saw.
  const first = lastEventId && /^\d+$/.test(lastEventId) ? Number(lastEventId) + 1 : 1
  const counts = { processed: 0, recovered: 0, fallbacks: 0, fatal: false }
  for (let item = first; item <= items; item++) {
    await sleep(tick, undefined, { signal })
    let result: EventInit | undefined
    for (let attempt = 1; attempt <= 3 && !result; attempt++) {
      try {
        const value = await work(item)
        result = { id: String(item), event: 'result', data: { item, value, attempts: attempt } }
        counts.processed++
        if (attempt > 1) counts.recovered++
      } catch (error) {
        if (error instanceof FatalError) {
          counts.fatal = true
          yield { event: 'fatal_error', data: { item, message: error.message } }
          yield { event: 'completion', data: counts }
          return
        }
        yield { event: 'recovery', data: { item, attempt, error: (error as Error).message } }
        // Exponential backoff: tick/10, tick/5, ... before the next attempt.
        if (attempt < 3) await sleep((tick / 10) * 2 ** (attempt - 1), undefined, { signal })
      }
    }
    if (!result) {
      counts.fallbacks++
      result = {
        id: String(item),
        event: 'fallback',
        data: { item, value: 0, reason: 'gave up after 3 attempts' },
      }
    }
    yield result
  }
  yield { event: 'completion', data: counts }
}

// ---------------------------------------------------------------------------------------------
// A circuit breaker

type BreakerState = 'closed' | 'open' | 'half-open'

/** Stops calling a failing service for a while, then lets one probe call through. */
class CircuitBreaker {
  state: BreakerState = 'closed'
  #failures = 0
  #openedAt = 0

  constructor(
    readonly threshold: number,
    readonly openFor: number,
  ) {}

  /** Whether a call may go through now; moves an expired open breaker to half-open. */
  allow(): boolean {
    if (this.state === 'open' && performance.now() - this.#openedAt >= this.openFor) {
      this.state = 'half-open'
    }
    return this.state !== 'open'
  }

  success(): void {
    this.state = 'closed'
    this.#failures = 0
  }

  failure(): void {
    this.#failures++
    if (this.state === 'half-open' || this.#failures >= this.threshold) {
      this.state = 'open'
      this.#openedAt = performance.now()
    }
  }
}

async function* circuitBreaker({ signal }: StreamContext) {
  const breaker = new CircuitBreaker(3, openFor)
  let calls = 0
  let lastGood: number | undefined
  const upstream = async (): Promise<number> => {
    calls++
    if (calls >= outageFrom && calls <= outageTo)
      throw new Error(`call ${calls}: 503 from upstream`)
    return 1000 + calls
  }
  for (let i = 1; i <= iterations; i++) {
    await sleep(tick, undefined, { signal })
    if (!breaker.allow()) {
      yield { event: 'fallback', data: { value: lastGood ?? null, stale: true } }
      continue
    }
    const probing = breaker.state === 'half-open'
    if (probing) yield { event: 'circuit_half_open', data: { call: calls + 1 } }
    try {
      const value = await upstream()
      lastGood = value
      breaker.success()
      if (probing) yield { event: 'circuit_closed', data: { call: calls } }
      yield { id: String(i), event: 'success', data: { value } }
    } catch (error) {
      breaker.failure()
      yield { event: 'service_error', data: { message: (error as Error).message } }
      if (breaker.state === 'open') {
        yield { event: 'circuit_open', data: { retryInMs: breaker.openFor } }
      }
    }
  }
}

const server = createServer((req, res) => {
  switch (new URL(req.url ?? '/', 'http://localhost').pathname) {
    case '/error-recovery':
      void sendEventStream(req, res, errorRecovery, { ping: 3000, sendTimeout: 10_000 })
      return
    case '/circuit-breaker':
      void sendEventStream(req, res, circuitBreaker, { ping: 5000 })
      return
    default:
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end('try /error-recovery or /circuit-breaker\n')
  }
})

server.listen(Number(env.PORT ?? 8000), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(`listening on http://127.0.0.1:${port}`)
  console.log(`  curl -N http://127.0.0.1:${port}/error-recovery`)
  console.log(`  curl -N http://127.0.0.1:${port}/circuit-breaker`)
})
