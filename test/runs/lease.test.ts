/**
 * The lease of a run's producer: an instance that dies without a goodbye (SIGKILL) does not
 * leave its run's clients waiting for `ttl`; a producer that is alive but quiet for longer than
 * the lease is left alone; two instances starting one id at once start it once. On a real
 * redis-server of the test's own.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import { createChannel, END_EVENT, Runs, type RunsOptions, type SseError } from '../../src/index.ts'
import { RedisBroker } from '../../src/redis.ts'
import { readEvents, shortDurations } from '../../src/testing.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { closeAllServers } from '../helpers/servers.ts'
import { follow } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'
import { type RunsServer, runsServer } from './runs-server.ts'

const fixture = fileURLToPath(new URL('./fixtures/producer.ts', import.meta.url))
const LEASE = 400

let redis: RedisServer
let prefixes = 0
const open: Runs[] = []
const servers: RunsServer[] = []
const children: ChildProcess[] = []

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis?.close()
})

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL')
  for (const server of servers.splice(0)) expect(server.errors).toEqual([])
  await Promise.all(open.splice(0).map((runs) => runs.close()))
  await closeAllServers()
})

/** A `Runs` on the test's Redis under `prefix`, with its errors collected, and its server. */
async function instance(prefix: string, options: RunsOptions = {}) {
  const errors: unknown[] = []
  const runs = new Runs(
    shortDurations({
      lease: LEASE,
      ...options,
      broker: new RedisBroker({ url: redis.url, prefix }),
      onError: (error: unknown) => errors.push(error),
    }),
  )
  open.push(runs)
  const server = await runsServer(runs)
  servers.push(server)
  return { runs, server, errors }
}

/** Starts the producer fixture as another process; resolves once its run exists. */
function spawnProducer(prefix: string, id: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fixture, redis.url, prefix, id, String(LEASE)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  children.push(child)
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  // Seconds on a busy two-core machine: tsx compiles the fixture first.
  return waitFor(
    'the producer process to start its run',
    () => {
      if (child.exitCode !== null) {
        throw new Error(`producer exited with ${child.exitCode}:\n${output}`)
      }
      return output.includes('STARTED')
    },
    { timeout: 40_000 },
  ).then(() => child)
}

test('a producer killed with SIGKILL: its clients on another instance end "failed", not at ttl', async () => {
  const prefix = `lease${prefixes++}`
  const b = await instance(prefix)
  const child = await spawnProducer(prefix, 'orphan')
  const client = follow(b.server.attachUrl('orphan'))
  await client.until(
    'five ticks from the producer process',
    (events) => events.filter((event) => event.event === 'tick').length >= 5,
  )
  child.kill('SIGKILL')
  const killedAt = performance.now()
  await client.until('the end of the orphaned run', (seen) =>
    seen.some((event) => event.event === END_EVENT),
  )
  const { events } = client
  const waited = performance.now() - killedAt
  const end = events.find((event) => event.event === END_EVENT)
  expect(JSON.parse(end?.data ?? '')).toEqual({ reason: 'failed' })
  console.info(
    `[figures] lease ${LEASE} ms: the orphaned run ended ${Math.round(waited)} ms after the kill`,
  )
  // Within two leases of the last sign of life, plus a loaded machine's slack; far below the
  // 60 s ttl the run would otherwise hang for. Measured: 402–416 ms after the kill (four runs,
  // one beside a CI run), one lease of silence and one heartbeat read; 10 s is 24 times that.
  expect(waited).toBeLessThan(10_000)
  // The ticks received are the producer's, in order, each once.
  const ticks = events.filter((event) => event.event === 'tick').map((event) => event.data)
  expect(ticks).toEqual(ticks.map((_, n) => `tick-${n}`))
  expect(await b.runs.status('orphan')).toBe('failed')
  expect(b.errors).toEqual([expect.objectContaining({ code: 'ERR_SSE_RUN_ABANDONED' })])
  expect(String((b.errors[0] as SseError).message)).toContain('"orphan"')
  // A client that comes later is told at once, from the history.
  const late = await readEvents(b.server.attachUrl('orphan'), { timeout: 10_000 })
  expect(late.at(-1)).toMatchObject({ event: END_EVENT, data: '{"reason":"failed"}' })
})

test('a producer that is alive but quiet for several leases is not ended', async () => {
  const prefix = `lease${prefixes++}`
  const a = await instance(prefix)
  const b = await instance(prefix)
  const go = createChannel<string>(10)
  const run = await a.runs.start('thinking', async function* () {
    yield { event: 'token', data: 'first' }
    // Quiet until the test says: the client on b waits through several lease checks.
    for await (const data of go) yield { event: 'token', data }
  })
  const client = follow(b.server.attachUrl('thinking'))
  await client.until('the first token', (events) => events.length >= 1)
  // Three leases without an event, counted on b's side by its lease checks of the beat topic.
  const quietSince = performance.now()
  await waitFor('three leases of quiet', () => performance.now() - quietSince, {
    until: (elapsed) => elapsed >= 3 * LEASE,
  })
  expect(client.events.map((event) => event.event)).toEqual(['token'])
  go.send('second')
  go.close()
  expect(await run.finished).toBe('done')
  await client.until('the end', (seen) => seen.some((event) => event.event === END_EVENT))
  expect(client.events.map((event) => event.data)).toEqual(['first', 'second', '{"reason":"done"}'])
  expect(a.errors).toEqual([])
  expect(b.errors).toEqual([])
})

test('two instances starting one id at once: exactly one run starts, 20 times', async () => {
  const prefix = `lease${prefixes++}`
  const a = await instance(prefix)
  const b = await instance(prefix)
  for (let round = 0; round < 20; round++) {
    const id = `race-${round}`
    const results = await Promise.allSettled([
      a.runs.start(id, [{ data: 'from a' }]),
      b.runs.start(id, [{ data: 'from b' }]),
    ])
    const started = results.filter((result) => result.status === 'fulfilled')
    const refused = results.flatMap((result) =>
      result.status === 'rejected' ? [result.reason] : [],
    )
    expect(started, `round ${round}`).toHaveLength(1)
    expect(refused).toEqual([expect.objectContaining({ code: 'ERR_SSE_RUN_EXISTS' })])
    const events = await readEvents(a.server.attachUrl(id), { timeout: 10_000 })
    expect(events.map((event) => event.data)).toHaveLength(2)
    expect(events[1]).toMatchObject({ event: END_EVENT, data: '{"reason":"done"}' })
  }
})

test('lease is a whole number of ms, at least 5000, named in the error', async () => {
  for (const lease of [0, 999, 4999, 1.5, -1, '30000', Number.NaN]) {
    expect(() => new Runs({ lease: lease as number })).toThrow(
      expect.objectContaining({
        code: 'ERR_SSE_INVALID_OPTION',
        message: expect.stringContaining('"lease"'),
      }),
    )
  }
  expect(() => new Runs({ lease: 30 })).toThrow(/did you mean 30000 for 30 s/)
  await new Runs({ lease: 5000 }).close()
})

test('an end that cannot be published while Redis is away arrives once Redis is back', async () => {
  // A Redis of its own that keeps its data across the outage (append-only file).
  const outage = await startRedis({ persist: true })
  // The premise of a lease (see MIN_LEASE in runs.ts): it outlasts the wait before a producer's
  // connection comes back. node-redis waits up to 2.2 s between attempts, so with a 400 ms lease
  // the client's instance, back first, took the producer for dead (seen under load); here both
  // instances retry every 20 ms, and the lease leaves room for a loaded machine.
  const clients: Array<{ destroy(): void }> = []
  try {
    const make = (errors: unknown[]) => {
      const client = createClient({ url: outage.url, socket: { reconnectStrategy: () => 20 } })
      client.on('error', () => {}) // the broker reports what matters through onError
      clients.push(client)
      const runs = new Runs(
        shortDurations({
          lease: 2000,
          broker: new RedisBroker({ client, prefix: 'outage', commandTimeout: 300 }),
          onError: (error: unknown) => errors.push(error),
        }),
      )
      open.push(runs)
      return runs
    }
    const aErrors: unknown[] = []
    const bErrors: unknown[] = []
    const a = make(aErrors)
    const b = make(bErrors)
    const server = await runsServer(b)
    servers.push(server)
    const go = createChannel<string>(10)
    const run = await a.start('through-outage', async function* () {
      for await (const data of go) yield { event: 'token', data }
    })
    go.send('before')
    const client = follow(server.attachUrl('through-outage'))
    await client.until('the token sent before the outage', (events) => events.length >= 1)
    await outage.stop()
    go.close() // the run ends while its end cannot be published
    await waitFor('the first failed attempt to publish the end', () => aErrors.length >= 1)
    await outage.start()
    expect(await run.finished).toBe('done')
    await client.until('the end', (seen) => seen.some((event) => event.event === END_EVENT))
    expect(client.events.map((event) => event.data)).toEqual(['before', '{"reason":"done"}'])
    expect(await b.status('through-outage')).toBe('done')
    // One report of the end's first failed attempt; the reads of the clients' lease checks
    // that met the outage, if any, are reported as broker errors too. No run was abandoned.
    for (const error of [...aErrors, ...bErrors]) {
      expect(error).toMatchObject({ code: 'ERR_SSE_BROKER' })
    }
  } finally {
    await Promise.all(open.splice(0).map((runs) => runs.close()))
    for (const client of clients) client.destroy()
    await outage.close()
  }
})
