/**
 * examples/cluster: three instances behind a real nginx, on a redis-server of the test's own.
 * Clients with `oven-sse/client` reach every instance through the proxy; one instance is killed
 * with SIGKILL; every client still receives every message exactly once, in order; presence
 * and the per-user connection limit answer for the whole cluster; SIGTERM stops everything
 * cleanly.
 */

import { afterAll, afterEach, beforeAll, expect, test, vi } from 'vitest'
import { connect, type EventStream } from '../../src/client.ts'
import type { PresenceList } from '../../src/index.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { waitFor } from '../helpers/wait.ts'
import { EXAMPLE_TEST_TIMEOUT, runExample, stopAllExamples } from './run-example.ts'

vi.setConfig({ testTimeout: EXAMPLE_TEST_TIMEOUT })

let redis: RedisServer
const streams: EventStream[] = []

beforeAll(async () => {
  redis = await startRedis()
})

afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close()
  await stopAllExamples()
})

afterAll(async () => {
  await redis?.close()
})

interface Member {
  readonly user: string
  readonly stream: EventStream
  readonly messages: string[]
  /** The instance that served each connection, from its `X-Instance` header. */
  readonly instances: string[]
}

function member(base: string, user: string): Member {
  const messages: string[] = []
  const instances: string[] = []
  const stream = connect(`${base}/rooms/lobby/events?user=${user}`, {
    retryDelay: 1000,
    jitter: 0,
    onOpen: (response) => instances.push(response.headers.get('x-instance') ?? '?'),
    on: {
      message: (event) => messages.push((JSON.parse(event.data) as { text: string }).text),
    },
  })
  streams.push(stream)
  return { user, stream, messages, instances }
}

async function post(base: string, text: string): Promise<string> {
  const response = await fetch(`${base}/rooms/lobby/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'test', text }),
  })
  expect(response.status).toBe(202)
  return ((await response.json()) as { instance: string }).instance
}

async function members(base: string): Promise<PresenceList> {
  return (await (await fetch(`${base}/rooms/lobby/members`)).json()) as PresenceList
}

test('cluster: nginx balances three instances; a SIGKILLed one loses no message; SIGTERM ends all', async () => {
  const example = await runExample('cluster/run.ts', {
    group: true,
    env: { REDIS_URL: redis.url, PRESENCE_TTL: '3000', MAX_PER_USER: '2' },
    timeout: 60_000,
  })
  const pids = new Map<string, number>()
  for (const name of ['a', 'b', 'c']) {
    const line = await example.waitForLine(new RegExp(`^instance ${name} pid (\\d+)`))
    pids.set(name, Number(/pid (\d+)/.exec(line)?.[1]))
  }

  const clients = ['ada', 'bob', 'cy'].map((user) => member(example.url, user))
  await waitFor('the three members present, over the cluster', () => members(example.url), {
    until: (list) => list.total === 3,
    timeout: 20_000,
  })

  // Messages posted through the proxy are published on whichever instance took the POST (round
  // robin: six posts in a row, nothing else asking, go to each instance twice), and reach every
  // client.
  const publishers = new Set<string>()
  for (let n = 1; n <= 6; n++) publishers.add(await post(example.url, `before ${n}`))
  expect(publishers.size).toBe(3)
  const before = Array.from({ length: 6 }, (_, n) => `before ${n + 1}`)
  for (const client of clients) {
    await waitFor(`${client.user} to receive the first messages`, () => client.messages.length, {
      until: (count) => count >= before.length,
    })
  }

  // Kill the instance serving ada, and keep posting: its clients reconnect through nginx to a
  // living instance and resume after their Last-Event-ID.
  const victim = clients[0]?.instances[0] ?? ''
  process.kill(pids.get(victim) ?? 0, 'SIGKILL')
  await example.waitForLine(new RegExp(`^${victim} exited \\(SIGKILL\\)$`))
  for (let n = 1; n <= 6; n++) await post(example.url, `after ${n}`)
  const all = [...before, ...Array.from({ length: 6 }, (_, n) => `after ${n + 1}`)]
  for (const client of clients) {
    await waitFor(`${client.user} to receive every message`, () => client.messages.length, {
      until: (count) => count >= all.length,
      timeout: 20_000,
    })
    // Exactly once, in order, across the reconnection.
    expect(client.messages).toEqual(all)
  }
  const ada = clients[0] as Member
  expect(ada.instances.length).toBe(2)
  expect(ada.instances[1]).not.toBe(victim)

  // The dead instance's presence entries expire; the members, reconnected, stay present.
  await waitFor(
    'one connection per member once the dead entries expire',
    () => members(example.url),
    {
      until: (list) => list.total === 3 && list.members.every((entry) => entry.connections === 1),
      timeout: 20_000,
    },
  )

  // The per-user limit counts over the cluster: dee's third stream is refused wherever it lands
  // (test/limits/redis-limit.test.ts races connects over three instances).
  member(example.url, 'dee')
  member(example.url, 'dee')
  await waitFor('dee present with two connections', () => members(example.url), {
    until: (list) =>
      list.members.some((entry) => entry.member === 'dee' && entry.connections === 2),
    timeout: 20_000,
  })
  const third = await fetch(`${example.url}/rooms/lobby/events?user=dee`)
  expect(third.status).toBe(503)
  expect(third.headers.get('retry-after')).toBe('5')
  await third.body?.cancel()

  // SIGTERM: the instances end their streams and leave, then nginx and Redis stop.
  example.child.kill('SIGTERM')
  await example.waitForLine(/^cluster stopped$/, 20_000)
  expect(await example.exited).toEqual({ code: 0, signal: null })
  // Nothing failed on the way: no error from any instance, the shutdown's included.
  expect(example.lines.filter((line) => /error/i.test(line))).toEqual([])
})
