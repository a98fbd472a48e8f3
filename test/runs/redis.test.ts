/**
 * Detached runs on several instances sharing a real redis-server (its own, on a free port): two
 * `Runs`, each with its own RedisBroker and HTTP server, share nothing but Redis. A run started
 * on one is attached to, resumed on and stopped from the other; failure and expiry are seen
 * everywhere; a client killed 20 times reconnects to a random instance each time.
 */

import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import { createChannel, END_EVENT, Runs, type RunsOptions } from '../../src/index.ts'
import { RedisBroker } from '../../src/redis.ts'
import { readEvents, shortDurations } from '../../src/testing.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { closeAllServers } from '../helpers/servers.ts'
import { follow, gate } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'
import { chopAndResume, type RunsServer, runsServer } from './runs-server.ts'

let redis: RedisServer
let prefixes = 0

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis?.close()
})

const open: Runs[] = []
const servers: RunsServer[] = []

afterEach(async () => {
  for (const server of servers.splice(0)) expect(server.errors).toEqual([])
  await Promise.all(open.splice(0).map((runs) => runs.close()))
  await closeAllServers()
})

interface Instance {
  runs: Runs
  server: RunsServer
}

/** Two instances sharing one Redis prefix (fresh per test). */
async function instances(options: RunsOptions = {}): Promise<[Instance, Instance]> {
  const prefix = `runs${prefixes++}`
  const make = async (): Promise<Instance> => {
    const runs = new Runs({ ...options, broker: new RedisBroker({ url: redis.url, prefix }) })
    open.push(runs)
    const server = await runsServer(runs)
    servers.push(server)
    return { runs, server }
  }
  return [await make(), await make()]
}

const datas = (events: Array<{ data: string }>) => events.map((event) => event.data)

test('a run started on one instance is followed from another, mid-run, to its end', async () => {
  const [a, b] = await instances()
  const channel = createChannel<string>(10)
  await a.runs.start('g', channel)
  await channel.send('before anyone attached')
  expect(await b.runs.status('g')).toBe('running')
  const client = follow(b.server.attachUrl('g'))
  await client.until('the first token', (events) => events.length === 1)
  await channel.send('live')
  await client.until('the live token', (events) => events.length === 2)
  // A reload that lands on the first instance resumes after what it had.
  const reload = follow(a.server.attachUrl('g'), { lastEventId: client.events[0]!.id! })
  channel.close()
  await Promise.all([client.ended(), reload.ended()])
  expect(datas(client.events)).toEqual(['before anyone attached', 'live', '{"reason":"done"}'])
  expect(datas(reload.events)).toEqual(['live', '{"reason":"done"}'])
  expect(await b.runs.status('g')).toBe('done')
  await expect(b.runs.start('g', [])).rejects.toMatchObject({ code: 'ERR_SSE_RUN_EXISTS' })
})

test('stop from another instance aborts the producer; every client ends "stopped"', async () => {
  const [a, b] = await instances()
  const reasons: unknown[] = []
  const handle = await a.runs.start('s', async function* (signal) {
    yield 'working'
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
    reasons.push(signal.reason)
  })
  const onA = follow(a.server.attachUrl('s'))
  const onB = follow(b.server.attachUrl('s'))
  await onA.until('working', (events) => events.length === 1)
  await onB.until('working', (events) => events.length === 1)
  expect(await b.server.stop('s')).toEqual({ status: 200, body: '{"stopped":true}' })
  expect(await handle.finished).toBe('stopped')
  await Promise.all([onA.ended(), onB.ended()])
  expect(reasons).toEqual(['stop'])
  for (const client of [onA, onB])
    expect(datas(client.events)).toEqual(['working', '{"reason":"stopped"}'])
  expect(await b.runs.stop('s')).toBe(false)
  expect(await b.server.stop('unknown')).toEqual({ status: 404, body: 'ERR_SSE_RUN_NOT_FOUND' })
})

test('a producer failing on one instance ends the clients of the other with "failed"', async () => {
  const errors: unknown[] = []
  const [a, b] = await instances({ onError: (error) => errors.push(error) })
  const fail = gate()
  await a.runs.start('f', async function* () {
    yield 'partial'
    await fail.promise
    throw new Error('internal detail')
  })
  const client = follow(b.server.attachUrl('f'))
  await client.until('partial', (events) => events.length === 1)
  fail.open()
  await client.ended()
  expect(datas(client.events)).toEqual(['partial', '{"reason":"failed"}'])
  expect(errors).toEqual([expect.objectContaining({ message: 'internal detail' })])
  expect(await b.runs.status('f')).toBe('failed')
})

test('a finished run expires on Redis: every instance answers "unknown"', async () => {
  const [a, b] = await instances(shortDurations({ ttl: 300 }))
  await (await a.runs.start('x', ['one'])).finished
  expect(datas(await readEvents(b.server.attachUrl('x')))).toEqual(['one', '{"reason":"done"}'])
  await waitFor('the run to expire', () => b.runs.status('x'), { until: (state) => !state })
  const events = await readEvents(b.server.attachUrl('x'))
  expect(events).toEqual([
    expect.objectContaining({ event: END_EVENT, data: '{"reason":"unknown"}' }),
  ])
  await expect(a.runs.stop('x')).rejects.toMatchObject({ code: 'ERR_SSE_RUN_NOT_FOUND' })
})

test('a client killed 20 times, reconnecting to a random instance, gets every event exactly once', async () => {
  const [a, b] = await instances()
  const { produced, received, end } = await chopAndResume(a.runs, [a.server, b.server], 29)
  expect(produced.length).toBeGreaterThan(50)
  expect(received).toEqual(produced)
  expect(end?.event).toBe(END_EVENT)
  expect(end?.data).toBe('{"reason":"done"}')
}, 60_000)
