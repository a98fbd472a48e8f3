/**
 * Several server processes sharing topics through a real redis-server (started by the tests on
 * a free port): fan-out across instances, resume on another instance, and a Redis outage.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { Broadcaster, RESET_EVENT } from '../../src/index.ts'
import { RedisBroker } from '../../src/redis.ts'
import { iterateEvents, readEvents, type SseEvent } from '../../src/testing.ts'
import { freePort, type RedisServer, startRedis } from '../helpers/redis.ts'
import { sleep, waitFor } from '../helpers/servers.ts'

const fixture = fileURLToPath(new URL('./fixtures/redis-hub-server.ts', import.meta.url))

interface Instance {
  url: string
  child: ChildProcess
}

function spawnInstance(redisUrl: string): Promise<Instance> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, redisUrl], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`instance did not start in 15 s:\n${output}`))
    }, 15_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`instance exited with ${code}:\n${output}`))
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const port = /PORT (\d+)/.exec(output)?.[1]
      if (port) {
        clearTimeout(timer)
        child.removeAllListeners('exit')
        resolve({ url: `http://127.0.0.1:${port}`, child })
      }
    })
  })
}

async function publish(instance: Instance, topic: string, data: string) {
  const response = await fetch(
    `${instance.url}/publish?topic=${encodeURIComponent(topic)}&data=${encodeURIComponent(data)}`,
    { method: 'POST' },
  )
  return { status: response.status, body: await response.text() }
}

async function stats(instance: Instance): Promise<{ live: number; subscribers: number }> {
  return (await (await fetch(`${instance.url}/stats`)).json()) as {
    live: number
    subscribers: number
  }
}

async function waitLive(instance: Instance, count: number): Promise<void> {
  const start = Date.now()
  while ((await stats(instance)).live < count) {
    if (Date.now() - start > 10_000) throw new Error(`${instance.url}: ${count} live subscribers`)
    await sleep(20)
  }
}

/** Waits until no instance has a subscriber left from an earlier test. */
async function waitIdle(): Promise<void> {
  for (const instance of instances) {
    const start = Date.now()
    while ((await stats(instance)).subscribers > 0) {
      if (Date.now() - start > 10_000) throw new Error(`${instance.url}: subscribers left`)
      await sleep(20)
    }
  }
}

const stream = (instance: Instance, ...topics: string[]) =>
  `${instance.url}/events?${topics.map((topic) => `topic=${topic}`).join('&')}`

/** A client reading a stream in the background until stopped. */
function collect(url: string) {
  const events: SseEvent[] = []
  const controller = new AbortController()
  const done = (async () => {
    for await (const event of iterateEvents(url, { signal: controller.signal, timeout: 60_000 })) {
      events.push(event)
    }
  })()
  return {
    events,
    async stop() {
      controller.abort()
      await done
    },
  }
}

let redis: RedisServer
let instances: Instance[] = []

beforeAll(async () => {
  redis = await startRedis()
  instances = await Promise.all([1, 2, 3].map(() => spawnInstance(redis.url)))
}, 30_000)

afterAll(async () => {
  await Promise.all(
    instances.map(
      ({ child }) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve()
          child.once('exit', () => resolve())
          child.kill('SIGKILL')
        }),
    ),
  )
  await redis?.close()
})

describe('three server processes on one Redis', () => {
  test('an event published on any instance reaches the clients of every instance', async () => {
    await waitIdle()
    const clients = instances.flatMap((instance) => [
      readEvents(stream(instance, 'fan'), { count: 6, timeout: 15_000 }),
      readEvents(stream(instance, 'fan', 'other'), { count: 6, timeout: 15_000 }),
    ])
    for (const instance of instances) await waitLive(instance, 2)
    const ids: string[] = []
    for (const [index, instance] of instances.entries()) {
      for (const round of [0, 1]) {
        const { status, body } = await publish(instance, 'fan', `from ${index} #${round}`)
        expect(status).toBe(200)
        ids.push(body)
      }
    }
    const expected = ids.map((id, i) => ({
      id,
      event: undefined,
      data: `from ${Math.floor(i / 2)} #${i % 2}`,
    }))
    for (const events of await Promise.all(clients)) expect(events).toEqual(expected)
    // One shared sequence: the positions grow across instances.
    const seqs = ids.map((id) => Number(id.split('-')[1]))
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
    expect(new Set(ids.map((id) => id.split('-')[0])).size).toBe(1)
  })

  test('a client that moves to another instance with Last-Event-ID gets exactly what it missed', async () => {
    await waitIdle()
    const [a, b, c] = instances as [Instance, Instance, Instance]
    const first = readEvents(stream(a, 'move', 'aside'), { count: 2, timeout: 15_000 })
    await waitLive(a, 1)
    await publish(c, 'move', 'm1')
    await publish(b, 'aside', 'm2')
    const seen = await first
    expect(seen.map((event) => event.data)).toEqual(['m1', 'm2'])
    // Disconnected; meanwhile events are published on every instance.
    await publish(a, 'move', 'm3')
    await publish(b, 'unrelated', 'not for it')
    await publish(c, 'aside', 'm4')
    await publish(b, 'move', 'm5')
    const got: string[] = []
    for await (const event of iterateEvents(stream(b, 'move', 'aside'), {
      lastEventId: seen[1]!.id,
      timeout: 15_000,
    })) {
      got.push(event.data)
      if (got.length === 3) expect((await publish(c, 'move', 'm6')).status).toBe(200)
      if (got.length === 4) break
    }
    expect(got).toEqual(['m3', 'm4', 'm5', 'm6'])
  })

  test('hopping between instances while events are published: no gap, no duplicate', async () => {
    await waitIdle()
    const total = 150
    let published = 0
    const publisher = (async () => {
      while (published < total) {
        const topic = published % 3 === 0 ? 'hop-y' : 'hop-x'
        const { status } = await publish(instances[published % 3]!, topic, String(published))
        expect(status).toBe(200)
        published++
      }
    })()
    const received: number[] = []
    let lastId: string | undefined
    for (let round = 0; round < 100 && received.at(-1) !== total - 1; round++) {
      const left = total - 1 - (received.at(-1) ?? -1)
      const batch = await readEvents(stream(instances[round % 3]!, 'hop-x', 'hop-y'), {
        count: published >= total ? Math.min(left, 7) : 7,
        timeout: 1000,
        ...(lastId === undefined ? {} : { lastEventId: lastId }),
      }).catch((error: { partial?: SseEvent[] }) => error.partial ?? [])
      for (const event of batch) {
        expect(event.event).not.toBe(RESET_EVENT)
        received.push(Number(event.data))
        lastId = event.id
      }
    }
    await publisher
    const start = received[0]!
    expect(received).toEqual(received.map((_, i) => start + i))
    expect(received.at(-1)).toBe(total - 1)
    expect(received.length).toBeGreaterThan(50)
  })

  test('listening connections dropped mid-stream: instances catch up from the history, no reset', async () => {
    await waitIdle()
    const clients = instances.map((instance) => collect(stream(instance, 'blip')))
    const admin = createClient({ url: redis.url })
    admin.on('error', () => {})
    await admin.connect()
    try {
      for (const instance of instances) await waitLive(instance, 1)
      const sent = ['p0']
      expect((await publish(instances[0]!, 'blip', 'p0')).status).toBe(200)
      // Kill every pub/sub connection; publishing goes on through the other connections.
      await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub'])
      for (let i = 1; i <= 9; i++) {
        expect((await publish(instances[i % 3]!, 'blip', `p${i}`)).status).toBe(200)
        sent.push(`p${i}`)
      }
      for (const [index, client] of clients.entries()) {
        await waitFor(() => client.events.length >= sent.length, 15_000, `client ${index}`)
        expect(client.events.map((event) => event.data)).toEqual(sent)
      }
    } finally {
      await admin.close()
      await Promise.all(clients.map((client) => client.stop()))
    }
  })

  test('a FLUSHALL while connected starts a new epoch: subscribers are told, then get what follows', async () => {
    await waitIdle()
    const clients = instances.map((instance) => collect(stream(instance, 'flush')))
    const admin = createClient({ url: redis.url })
    admin.on('error', () => {})
    await admin.connect()
    try {
      for (const instance of instances) await waitLive(instance, 1)
      expect((await publish(instances[0]!, 'flush', 'f0')).status).toBe(200)
      await waitFor(() => clients.every((client) => client.events.length === 1), 10_000, 'f0')
      await admin.sendCommand(['FLUSHALL'])
      expect((await publish(instances[1]!, 'flush', 'f1')).status).toBe(200)
      expect((await publish(instances[2]!, 'flush', 'f2')).status).toBe(200)
      for (const [index, client] of clients.entries()) {
        await waitFor(() => client.events.length >= 4, 10_000, `client ${index}`)
        const [first, reset, ...rest] = client.events
        expect(first!.data).toBe('f0')
        expect(reset!.event).toBe(RESET_EVENT)
        expect(JSON.parse(reset!.data).reason).toBe('lost')
        expect(rest.map((event) => event.data)).toEqual(['f1', 'f2'])
        expect(reset!.id?.split('-')[0]).not.toBe(first!.id?.split('-')[0])
      }
    } finally {
      await admin.close()
      await Promise.all(clients.map((client) => client.stop()))
    }
  })

  test('Redis stops and starts mid-stream: publish fails loudly, subscribers resume, nothing published after the restart is lost', async () => {
    await waitIdle()
    const clients = instances.map((instance) => collect(stream(instance, 'outage')))
    try {
      for (const instance of instances) await waitLive(instance, 1)
      expect((await publish(instances[0]!, 'outage', 'before')).status).toBe(200)
      await waitFor(
        () => clients.every((client) => client.events.length === 1),
        10_000,
        'first event',
      )

      await redis.stop()
      // A publish during the outage is refused, with the broker error, on every instance.
      for (const instance of instances) {
        const refused = await publish(instance, 'outage', 'during')
        expect(refused.status).toBe(503)
        expect(JSON.parse(refused.body)).toMatchObject({ code: 'ERR_SSE_BROKER' })
      }

      await redis.start()
      // Publish through all instances as soon as each one reconnects; keep every accepted one.
      const accepted: string[] = []
      const deadline = Date.now() + 20_000
      for (let round = 0; accepted.length < 6 && Date.now() < deadline; round++) {
        const instance = instances[round % 3]!
        const data = `after ${round}`
        if ((await publish(instance, 'outage', data)).status === 200) accepted.push(data)
        else await sleep(50)
      }
      expect(accepted.length).toBe(6)

      for (const [index, client] of clients.entries()) {
        await waitFor(
          () => client.events.filter((event) => event.data.startsWith('after')).length === 6,
          20_000,
          `client ${index} catching up`,
        )
        const events = client.events
        expect(events[0]!.data).toBe('before')
        // The restarted Redis kept nothing (no persistence): a new epoch, told explicitly...
        expect(events[1]!.event).toBe(RESET_EVENT)
        expect(JSON.parse(events[1]!.data)).toMatchObject({ reason: 'lost', topics: ['outage'] })
        // ...then every event accepted after the restart, in order, once.
        expect(events.slice(2).map((event) => event.data)).toEqual(accepted)
      }

      // A client coming back with an id from before the restart is told it cannot resume.
      const stale = clients[0]!.events[0]!.id
      const back = await readEvents(stream(instances[1]!, 'outage'), {
        count: 1,
        lastEventId: stale,
        timeout: 10_000,
      })
      expect(back[0]!.event).toBe(RESET_EVENT)
      expect(JSON.parse(back[0]!.data).reason).toBe('lost')
    } finally {
      await Promise.all(clients.map((client) => client.stop()))
    }
  }, 60_000)
})

test('with no Redis at all, publish rejects with a clear error instead of hanging', async () => {
  const port = await freePort()
  const hub = new Broadcaster({
    broker: new RedisBroker({ url: `redis://127.0.0.1:${port}`, commandTimeout: 500 }),
    onError: () => {},
  })
  try {
    const started = Date.now()
    const error = await hub.publish('t', 'x').then(
      () => undefined,
      (reason: unknown) => reason,
    )
    expect(error).toMatchObject({ code: 'ERR_SSE_BROKER' })
    expect(String((error as Error).message)).toMatch(
      /Redis is unreachable; the event was not published/,
    )
    expect(Date.now() - started).toBeLessThan(5000)
  } finally {
    await hub.close()
  }
})

test('a client of your own: the broker duplicates it for listening and leaves it open', async () => {
  const client = createClient({ url: redis.url })
  client.on('error', () => {})
  await client.connect()
  const hub = new Broadcaster({ broker: new RedisBroker({ client, prefix: 'own' }) })
  try {
    const subscription = hub.subscribe('mine')
    await subscription.ready
    const id = await hub.publish('mine', { event: 'note', data: { n: 1 } })
    const iterator = subscription[Symbol.asyncIterator]()
    const { value } = await iterator.next()
    expect(value).toMatchObject({ id, event: 'note', data: '{"n":1}' })
    // The keys are under the chosen prefix.
    expect(await client.sendCommand(['XLEN', '{own}:h:mine'])).toBe(1)
  } finally {
    await hub.close()
  }
  expect(client.isOpen).toBe(true)
  await client.close()
})
