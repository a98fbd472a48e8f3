/**
 * Detached runs in one process (the in-memory broker), over real sockets: a run produces
 * whether or not anyone is attached; clients attach from the start or from Last-Event-ID and
 * get exactly what they have not seen, the live tail and the end event; stop, failure, expiry,
 * bad input; a client killed 20 times at random points; 1 000 concurrent runs.
 */

import { afterEach, expect, test } from 'vitest'
import {
  createChannel,
  END_EVENT,
  RESET_EVENT,
  type RunProducer,
  Runs,
  type RunsOptions,
} from '../../src/index.ts'
import { iterateEvents, readEvents, type SseEvent, shortDurations } from '../../src/testing.ts'
import { closeAllServers } from '../helpers/servers.ts'
import { follow, gate } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'
import { chopAndResume, type RunsServer, runsServer } from './runs-server.ts'

const open: Runs[] = []
const servers: RunsServer[] = []

afterEach(async () => {
  for (const server of servers.splice(0)) expect(server.errors).toEqual([])
  await Promise.all(open.splice(0).map((runs) => runs.close()))
  await closeAllServers()
})

function makeRuns(options: RunsOptions = {}): Runs {
  const runs = new Runs(options)
  open.push(runs)
  return runs
}

async function serve(runs: Runs): Promise<RunsServer> {
  const server = await runsServer(runs)
  servers.push(server)
  return server
}

const datas = (events: SseEvent[]) => events.map((event) => event.data)
const endOf = (event: SseEvent | undefined) =>
  event?.event === END_EVENT ? (JSON.parse(event.data) as { reason: string }).reason : undefined

test('a run produces with no one attached; attaching from the start replays it, then the end', async () => {
  const runs = makeRuns()
  const server = await serve(runs)
  const handle = await runs.start('a', ['one', { event: 'tool', data: { n: 2 } }, 'three'])
  expect(await handle.finished).toBe('done')
  const events = await readEvents(server.attachUrl('a'))
  expect(events.map(({ event, data }) => [event, data])).toEqual([
    [undefined, 'one'],
    ['tool', '{"n":2}'],
    [undefined, 'three'],
    [END_EVENT, '{"reason":"done"}'],
  ])
  expect(await runs.status('a')).toBe('done')
  // A client that already has the end (an EventSource that reconnected) is told again, no id.
  const again = await readEvents(server.attachUrl('a'), { lastEventId: events.at(-1)!.id })
  expect(again).toEqual([expect.objectContaining({ event: END_EVENT, id: undefined })])
})

test('a client attached mid-run gets what it missed after Last-Event-ID, then the live tail', async () => {
  const runs = makeRuns()
  const server = await serve(runs)
  const channel = createChannel<string>(10)
  await runs.start('live', channel)
  const first = follow(server.attachUrl('live'))
  for (const token of ['a', 'b', 'c']) await channel.send(token)
  await first.until('three tokens', (events) => events.length === 3)
  await first.stop()
  await channel.send('d')
  const second = follow(server.attachUrl('live'), { lastEventId: first.events[1]!.id! })
  await second.until('c and d', (events) => events.length === 2)
  await channel.send('e')
  channel.close()
  await second.ended()
  expect(datas(second.events)).toEqual(['c', 'd', 'e', '{"reason":"done"}'])
  expect(runs.running).toBe(0)
})

test('stop() aborts the producer with reason "stop"; clients end with reason "stopped"', async () => {
  const runs = makeRuns()
  const server = await serve(runs)
  const reasons: unknown[] = []
  const producer: RunProducer = async function* (signal) {
    yield 'first'
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
    reasons.push(signal.reason)
    yield 'after the stop' // not published: the run is stopping
  }
  const handle = await runs.start('s', producer)
  const client = follow(server.attachUrl('s'))
  await client.until('first', (events) => events.length === 1)
  expect(await server.stop('s')).toEqual({ status: 200, body: '{"stopped":true}' })
  await client.ended()
  expect(await handle.finished).toBe('stopped')
  expect(reasons).toEqual(['stop'])
  expect(datas(client.events)).toEqual(['first', '{"reason":"stopped"}'])
  expect(await runs.stop('s')).toBe(false)
  expect(await server.stop('nope')).toEqual({ status: 404, body: 'ERR_SSE_RUN_NOT_FOUND' })
})

test('stop() ends a run whose producer ignores its signal, and its finally runs once it can', async () => {
  const runs = makeRuns()
  const server = await serve(runs)
  const never = gate()
  const cleanedUp: string[] = []
  const handle = await runs.start('deaf', async function* () {
    try {
      yield 'only'
      await never.promise // ignores the signal
      yield 'never published'
    } finally {
      cleanedUp.push('finally')
    }
  })
  const client = follow(server.attachUrl('deaf'))
  await client.until('only', (events) => events.length === 1)
  expect(await runs.stop('deaf')).toBe(true)
  expect(await handle.finished).toBe('stopped')
  await client.ended()
  expect(datas(client.events)).toEqual(['only', '{"reason":"stopped"}'])
  never.open()
  await waitFor('the producer to finish', () => cleanedUp.length === 1)
  await runs.close() // nothing left to wait for
})

test('a failing producer ends its clients with reason "failed", without the error text', async () => {
  const errors: unknown[] = []
  const runs = makeRuns({ onError: (error) => errors.push(error) })
  const server = await serve(runs)
  const fail = gate()
  const handle = await runs.start('f', async function* () {
    yield 'partial'
    await fail.promise
    throw new Error('secret database password')
  })
  const client = follow(server.attachUrl('f'))
  await client.until('partial', (events) => events.length === 1)
  fail.open()
  await client.ended()
  expect(await handle.finished).toBe('failed')
  expect(datas(client.events)).toEqual(['partial', '{"reason":"failed"}'])
  expect(JSON.stringify(client.events)).not.toContain('secret')
  expect(errors).toEqual([expect.objectContaining({ message: 'secret database password' })])
  expect(await runs.status('f')).toBe('failed')
})

test('a finished run expires after ttl: attach gets the end event "unknown", the id is free', async () => {
  const runs = makeRuns(shortDurations({ ttl: 200 }))
  const server = await serve(runs)
  await (await runs.start('x', ['only'])).finished
  expect(await runs.status('x')).toBe('done')
  await waitFor('the run to expire', () => runs.status('x'), { until: (state) => !state })
  const events = await readEvents(server.attachUrl('x'))
  expect(events).toEqual([
    expect.objectContaining({ event: END_EVENT, data: '{"reason":"unknown"}', id: undefined }),
  ])
  expect(await readEvents(server.attachUrl('never-started'))).toEqual(events)
  await expect(runs.stop('x')).rejects.toMatchObject({ code: 'ERR_SSE_RUN_NOT_FOUND' })
  await (await runs.start('x', ['reborn'])).finished
  expect(datas(await readEvents(server.attachUrl('x')))).toEqual(['reborn', '{"reason":"done"}'])
})

test('bad input: duplicate id, bad ttl, bad id, bad producer; a foreign Last-Event-ID resets', async () => {
  const runs = makeRuns()
  const server = await serve(runs)
  const channel = createChannel<string>(1)
  await runs.start('dup', channel)
  await expect(runs.start('dup', [])).rejects.toMatchObject({
    code: 'ERR_SSE_RUN_EXISTS',
    message: expect.stringContaining('is running'),
  })
  for (const ttl of [0, 1.5, '1000', -1]) {
    expect(() => new Runs({ ttl: ttl as number })).toThrow(/Invalid option "ttl": expected/)
  }
  expect(() => new Runs({ ttl: 10 })).toThrow(/received number 10/)
  expect(() => new Runs({ history: 0 })).toThrow(/"history": expected an integer >= 1/)
  expect(() => new Runs({ tll: 5 } as RunsOptions)).toThrow(/tll/)
  expect(() => runs.attach('')).toThrow(/Invalid run id in attach\(\)/)
  await expect(runs.start('p', 42 as unknown as RunProducer)).rejects.toThrow(
    /"producer": expected an \(async\) iterable/,
  )
  const client = follow(server.attachUrl('dup'), { lastEventId: 'not-an-id' })
  await client.until('the reset', (events) => events.length === 1)
  await channel.send('live')
  channel.close()
  await client.ended()
  expect(client.events.map((event) => event.event)).toEqual([RESET_EVENT, undefined, END_EVENT])
  await expect(runs.start('dup', [])).rejects.toThrow(/finished \(done\) and not expired/)
  // On a finished run, the reset is followed by the end at once (no live event will come).
  const late = await readEvents(server.attachUrl('dup'), { lastEventId: 'not-an-id' })
  expect(late.map(({ event, id }) => [event, id])).toEqual([
    [RESET_EVENT, expect.any(String)],
    [END_EVENT, undefined],
  ])
})

test('a client killed 20 times at random points receives every event exactly once', async () => {
  const runs = makeRuns()
  const server = await serve(runs)
  const { produced, received, end } = await chopAndResume(runs, [server], 11)
  expect(produced.length).toBeGreaterThan(50)
  expect(received).toEqual(produced)
  expect(endOf(end)).toBe('done')
})

test('1 000 concurrent runs, each followed by its own client, each ends with exactly its output', async () => {
  const runs = makeRuns()
  const server = await serve(runs)
  const count = 1000
  const release = gate()
  for (let i = 0; i < count; i++) {
    await runs.start(`r${i}`, async function* () {
      yield `r${i}:0`
      await release.promise
      yield `r${i}:1`
      yield `r${i}:2`
    })
  }
  expect(runs.running).toBe(count)
  const clients = Array.from({ length: count }, async (_, i) => {
    const got: string[] = []
    for await (const event of iterateEvents(server.attachUrl(`r${i}`), { timeout: 60_000 })) {
      got.push(event.data)
    }
    return got
  })
  release.open()
  const results = await Promise.all(clients)
  results.forEach((got, i) => {
    expect(got).toEqual([`r${i}:0`, `r${i}:1`, `r${i}:2`, '{"reason":"done"}'])
  })
  await waitFor('every run to finish', () => runs.running, { until: (n) => n === 0 })
}, 120_000)
