/**
 * Several server processes sharing topics through a real redis-server (started by the tests on
 * a free port): fan-out across instances, resume on another instance, and a Redis outage.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { Broadcaster, RESET_EVENT } from '../../src/index.ts'
import { RedisBroker } from '../../src/redis.ts'
import { iterateEvents, readEvents, type SseEvent } from '../../src/testing.ts'
import { type RedisServer, reservePort, startRedis } from '../helpers/redis.ts'
import { waitFor } from '../helpers/wait.ts'

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
    // Three tsx processes compiling at once on a busy two-core machine take seconds each.
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`instance did not start in 40 s:\n${output}`))
    }, 40_000)
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

/**
 * Publishes through an instance's HTTP endpoint. The instance answers at once either way (its
 * command timeout is far longer): a request held for a Redis reconnect fails here, named.
 */
async function publish(instance: Instance, topic: string, data: string) {
  const response = await fetch(
    `${instance.url}/publish?topic=${encodeURIComponent(topic)}&data=${encodeURIComponent(data)}`,
    { method: 'POST', signal: AbortSignal.timeout(10_000) },
  )
  return { status: response.status, body: await response.text() }
}

async function stats(instance: Instance): Promise<{ live: number; subscribers: number }> {
  return (await (await fetch(`${instance.url}/stats`)).json()) as {
    live: number
    subscribers: number
  }
}

/** The errors an instance reported since the last call (its hub's and its streams'). */
async function takeErrors(instance: Instance): Promise<Array<{ code: string; message: string }>> {
  return (await (await fetch(`${instance.url}/errors`, { method: 'POST' })).json()) as Array<{
    code: string
    message: string
  }>
}

async function waitLive(instance: Instance, count: number): Promise<void> {
  await waitFor(
    `${count} live subscribers on ${instance.url}`,
    async () => (await stats(instance)).live,
    {
      until: (live) => live >= count,
      interval: 20,
    },
  )
}

/** Waits until no instance has a subscriber left from an earlier test. */
async function waitIdle(): Promise<void> {
  for (const instance of instances) {
    await waitFor(
      `no subscribers left on ${instance.url}`,
      async () => (await stats(instance)).subscribers,
      { until: (subscribers) => subscribers === 0, interval: 20 },
    )
  }
}

const stream = (instance: Instance, ...topics: string[]) =>
  `${instance.url}/events?${topics.map((topic) => `topic=${topic}`).join('&')}`

/**
 * A client reading a stream in the background until stopped. A stream that fails is recorded:
 * `read()` then throws it, so a wait on the client fails at once with the stream's own error.
 */
function collect(url: string) {
  const events: SseEvent[] = []
  const controller = new AbortController()
  let failure: { error: unknown } | undefined
  const done = (async () => {
    try {
      for await (const event of iterateEvents(url, {
        signal: controller.signal,
        timeout: 60_000,
      })) {
        events.push(event)
      }
    } catch (error) {
      failure = { error }
    }
  })()
  const read = () => {
    if (failure) throw new Error(`the stream of ${url} failed`, { cause: failure.error })
    return events
  }
  return {
    read,
    async stop() {
      controller.abort()
      await done
      read()
    },
  }
}

let redis: RedisServer
const instances: Instance[] = []

beforeAll(async () => {
  redis = await startRedis()
  // Every instance that started is kept, so afterAll stops it even if another failed to start.
  const started = await Promise.allSettled([1, 2, 3].map(() => spawnInstance(redis.url)))
  for (const result of started) if (result.status === 'fulfilled') instances.push(result.value)
  const failed = started.find((result) => result.status === 'rejected')
  if (failed) throw failed.reason
}, 60_000)

// What an instance reports is part of every test's result; the outage test takes its own.
afterEach(async () => {
  for (const instance of instances) expect(await takeErrors(instance)).toEqual([])
})

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
    const received: number[] = []
    let lastId: string | undefined
    // Each round reads the next few events on the next instance, then disconnects; the next
    // round resumes from the last id. A round ends on its count, never on a timer: it asks only
    // for events that will be published.
    const round = (index: number) =>
      readEvents(stream(instances[index % 3]!, 'hop-x', 'hop-y'), {
        count: Math.min(total - received.length, 7),
        timeout: 15_000,
        ...(lastId === undefined ? {} : { lastEventId: lastId }),
      })
    // The first client is live before anything is published, so it must get every event.
    const first = round(0)
    await waitLive(instances[0]!, 1)
    const publisher = (async () => {
      while (published < total) {
        const topic = published % 3 === 0 ? 'hop-y' : 'hop-x'
        const { status } = await publish(instances[published % 3]!, topic, String(published))
        expect(status).toBe(200)
        published++
      }
    })()
    for (let index = 0; index < 100 && received.length < total; index++) {
      for (const event of await (index === 0 ? first : round(index))) {
        expect(event.event).not.toBe(RESET_EVENT)
        received.push(Number(event.data))
        lastId = event.id
      }
    }
    await publisher
    expect(received).toEqual(Array.from({ length: total }, (_, i) => i))
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
        await waitFor(`client ${index} received all ${sent.length}`, () => client.read().length, {
          until: (n) => n >= sent.length,
          timeout: 15_000,
        })
        expect(client.read().map((event) => event.data)).toEqual(sent)
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
      await waitFor('every client received f0', () => clients.map((c) => c.read().length), {
        until: (counts) => counts.every((n) => n === 1),
      })
      await admin.sendCommand(['FLUSHALL'])
      expect((await publish(instances[1]!, 'flush', 'f1')).status).toBe(200)
      expect((await publish(instances[2]!, 'flush', 'f2')).status).toBe(200)
      for (const [index, client] of clients.entries()) {
        await waitFor(`client ${index} received 4 events`, () => client.read().length, {
          until: (n) => n >= 4,
        })
        const [first, reset, ...rest] = client.read()
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
        'every client received the first event',
        () => clients.map((c) => c.read().length),
        {
          until: (counts) => counts.every((n) => n === 1),
        },
      )

      await redis.stop()
      // A publish during the outage is refused, with the broker error, on every instance: at
      // once, also on an instance that has not noticed the kill yet (its command timeout is far
      // beyond `publish`'s 10 s deadline here).
      for (const instance of instances) {
        const refused = await publish(instance, 'outage', 'during')
        expect(refused.status).toBe(503)
        expect(JSON.parse(refused.body)).toMatchObject({
          code: 'ERR_SSE_BROKER',
          message: expect.stringMatching(/not published|may not have been published/),
        })
      }

      await redis.start()
      // Publish through all instances as soon as each one reconnects; keep every accepted one.
      // Until then each is refused, by the broker.
      const accepted: string[] = []
      let attempt = 0
      await waitFor(
        'six publishes accepted after the restart',
        async () => {
          const data = `after ${attempt}`
          const { status, body } = await publish(instances[attempt++ % 3]!, 'outage', data)
          if (status === 200) accepted.push(data)
          else expect(JSON.parse(body)).toMatchObject({ code: 'ERR_SSE_BROKER' })
          return accepted.length
        },
        { until: (n) => n >= 6, timeout: 20_000, interval: 20 },
      )

      for (const [index, client] of clients.entries()) {
        await waitFor(
          `client ${index} caught up`,
          () => client.read().filter((event) => event.data.startsWith('after')).length,
          { until: (n) => n === 6, timeout: 20_000 },
        )
        const events = client.read()
        expect(events[0]!.data).toBe('before')
        // The restarted Redis kept nothing (no persistence): a new epoch, told explicitly...
        expect(events[1]!.event).toBe(RESET_EVENT)
        expect(JSON.parse(events[1]!.data)).toMatchObject({ reason: 'lost', topics: ['outage'] })
        // ...then every event accepted after the restart, in order, once.
        expect(events.slice(2).map((event) => event.data)).toEqual(accepted)
      }

      // A client coming back with an id from before the restart is told it cannot resume.
      const stale = clients[0]!.read()[0]!.id
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
    // Only the outage may have been reported, and only as the broker's errors.
    for (const instance of instances) {
      for (const error of await takeErrors(instance)) expect(error.code).toBe('ERR_SSE_BROKER')
    }
  }, 60_000)
})

test('with no Redis at all, publish rejects with a clear error instead of hanging', async () => {
  // A port of the reserved range: nothing listens there, and nothing can start to meanwhile.
  const { port, release } = await reservePort()
  const errors: unknown[] = []
  const hub = new Broadcaster({
    broker: new RedisBroker({ url: `redis://127.0.0.1:${port}`, commandTimeout: 500 }),
    onError: (error) => errors.push(error),
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
    // A hang guard: the publish waits up to commandTimeout (500 ms) for a first connection that
    // never comes, then refuses. Measured: 503 ms; 5000 is ten times the wait.
    expect(Date.now() - started).toBeLessThan(5000)
    expect(errors).toEqual([])
  } finally {
    await hub.close()
    await release()
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
