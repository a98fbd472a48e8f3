/**
 * Broker faults: redis-server killed (SIGKILL, no persistence) and restarted while events are
 * being published every few ms and while clients subscribe. Nothing accepted after recovery is
 * lost, failures are fast and loud (ERR_SSE_BROKER), and nothing buffers without bound while
 * Redis is down. Also: a subscription to 100 000 topics gets a clear, bounded answer.
 */

import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import {
  Broadcaster,
  type CloseReason,
  EventSourceResponse,
  isSseError,
  RESET_EVENT,
  StreamRegistry,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { RedisBroker } from '../../src/redis.ts'
import { iterateEvents, type SseEvent } from '../../src/testing.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { closeAllServers, nodeServer, type TestServer } from '../helpers/servers.ts'
import { fetchText, mb, settledHeap, sleep, until } from './support.ts'

let redis: RedisServer
const hubs: Broadcaster[] = []

beforeAll(async () => {
  redis = await startRedis()
}, 30_000)
afterEach(async () => {
  await closeAllServers()
  await Promise.all(hubs.splice(0).map((hub) => hub.close()))
  if (!redis.running) await redis.start()
})
afterAll(async () => {
  await redis?.close()
})

/** One "server process": a broadcaster on the shared Redis behind an HTTP server. */
async function instance(prefix: string, errors: unknown[] = []) {
  const hub = new Broadcaster({
    broker: new RedisBroker({ url: redis.url, prefix, commandTimeout: 1000 }),
    onError: (error) => errors.push(error),
  })
  hubs.push(hub)
  const registry = new StreamRegistry()
  const server = await nodeServer((req, res) => {
    const topic = new URL(req.url ?? '/', 'http://x').searchParams.get('topic') ?? 'news'
    void sendEventStream(req, res, (ctx) => hub.subscribe([topic], ctx), {
      registry,
      onError: (error) => errors.push(error),
    })
  })
  return { hub, server, registry }
}

/** A client reading a stream in the background. */
function collect(server: TestServer, topic = 'news') {
  const events: SseEvent[] = []
  const controller = new AbortController()
  const done = (async () => {
    try {
      for await (const event of iterateEvents(`${server.url}/?topic=${topic}`, {
        signal: controller.signal,
        timeout: 120_000,
      })) {
        events.push(event)
      }
    } catch {
      // Stopped.
    }
  })()
  return {
    events,
    data: () => events.filter((e) => e.event !== RESET_EVENT).map((e) => e.data),
    async stop() {
      controller.abort()
      await done
    },
  }
}

describe('Redis killed and restarted', () => {
  test('during continuous publishing: failures are fast and loud, nothing accepted is lost', async () => {
    const prefix = `pub${Date.now()}`
    const a = await instance(prefix)
    const b = await instance(prefix)
    const clients = [collect(a.server), collect(b.server), collect(b.server)]
    await until(
      () => a.hub.subscribers('news') === 1 && b.hub.subscribers('news') === 2,
      10_000,
      'subscribed',
    )
    // Live on both instances before the outage (a new subscriber without Last-Event-ID starts
    // from the moment it is listening: publish until every client has seen one).
    await until(
      () => {
        void a.hub.publish('news', 'warm-up').catch(() => {})
        return clients.every((c) => c.data().includes('warm-up'))
      },
      10_000,
      'warm-up received',
    )

    const accepted: string[] = []
    const failures: Array<{ ms: number; code: string | undefined }> = []
    // Publishes started between the kill (redis-server exited) and the restart: all refused.
    const whileDown: Array<'accepted' | 'refused'> = []
    let phase: 'before' | 'down' | 'after' = 'before'
    let outage = false
    let stop = false
    const publisher = (async () => {
      for (let i = 0; !stop && i < 100_000; i++) {
        const data = `${phase} ${i}`
        const startedDown = outage
        const started = performance.now()
        try {
          await (i % 2 === 0 ? a : b).hub.publish('news', data)
          accepted.push(data)
          if (startedDown) whileDown.push('accepted')
        } catch (error) {
          failures.push({
            ms: performance.now() - started,
            code: isSseError(error) ? error.code : undefined,
          })
          if (startedDown) whileDown.push('refused')
        }
        await sleep(5)
      }
    })()
    // Conditions, not durations: the machine may be busy, and then 300 ms can be one publish.
    await until(
      () => accepted.filter((d) => d.startsWith('before')).length >= 20,
      10_000,
      '20 publishes accepted before the outage',
    )
    phase = 'down'
    await redis.stop()
    outage = true
    await until(() => whileDown.length >= 10, 10_000, '10 publishes settled after the kill')
    outage = false
    await redis.start()
    phase = 'after'
    // Keep publishing until some events went through after the restart.
    await until(
      () => accepted.filter((d) => d.startsWith('after')).length >= 40,
      20_000,
      'recovery',
    )
    stop = true
    await publisher

    // Redis was gone for every one of these: none may be reported as accepted.
    expect(whileDown.filter((outcome) => outcome === 'accepted')).toEqual([])
    expect(failures.length).toBeGreaterThan(0)
    expect(failures.every((f) => f.code === 'ERR_SSE_BROKER')).toBe(true)
    // Refused at once (the client knows it is disconnected), or within the command timeout.
    expect(Math.max(...failures.map((f) => f.ms))).toBeLessThan(1000 + 500)

    const after = accepted.filter((d) => d.startsWith('after'))
    for (const [index, client] of clients.entries()) {
      await until(
        () => after.every((d) => client.data().includes(d)),
        20_000,
        `client ${index} received every event accepted after the restart`,
      )
      const data = client.data()
      // In order and once each.
      const positions = after.map((d) => data.indexOf(d))
      expect(positions).toEqual([...positions].sort((x, y) => x - y))
      const unique = data.filter((d) => d !== 'warm-up')
      expect(new Set(unique).size).toBe(unique.length)
      // Redis came back empty: the client is told its position is gone, once.
      expect(client.events.filter((e) => e.event === RESET_EVENT)).toHaveLength(1)
    }
    const before = accepted.filter((d) => d.startsWith('before'))
    for (const client of clients) expect(before.every((d) => client.data().includes(d))).toBe(true)
    console.info(
      JSON.stringify({
        accepted: accepted.length,
        acceptedAfterRestart: after.length,
        refused: failures.length,
        slowestRefusalMs: Math.round(Math.max(...failures.map((f) => f.ms))),
      }),
    )
    await Promise.all(clients.map((c) => c.stop()))
  }, 60_000)

  test('clients that subscribe while Redis is down get everything published after recovery', async () => {
    const prefix = `sub${Date.now()}`
    const errors: unknown[] = []
    const a = await instance(prefix, errors)
    const b = await instance(prefix, errors)
    await redis.stop()
    const late = [collect(a.server), collect(b.server)]
    // The scenario is subscribing while Redis is down: wait until both requests reached their
    // server and subscribed (a duration here would let a busy machine subscribe after restart).
    await until(
      () => a.hub.subscribers('news') === 1 && b.hub.subscribers('news') === 1,
      10_000,
      'both clients subscribed while Redis is down',
    )
    expect(redis.running).toBe(false)
    await redis.start()
    // The subscriptions set up once Redis answers again; publish until they see events.
    const accepted: string[] = []
    await until(
      () => {
        void a.hub.publish('news', `p${accepted.length}`).then(
          (id) => id && accepted.push(`p${accepted.length}`),
          () => {},
        )
        return late.every((c) => c.data().length > 0)
      },
      20_000,
      'late subscribers live',
    )
    const marker: string[] = []
    for (let i = 0; i < 20; i++) {
      const data = `after-recovery ${i}`
      await a.hub.publish('news', data)
      marker.push(data)
    }
    for (const client of late) {
      await until(() => marker.every((d) => client.data().includes(d)), 10_000, 'all received')
    }
    await Promise.all(late.map((c) => c.stop()))
  }, 60_000)

  test('while Redis is down nothing buffers: 20 000 publishes are refused and the heap stays flat', async () => {
    const prefix = `buf${Date.now()}`
    const a = await instance(prefix)
    const client = collect(a.server)
    await until(() => a.hub.subscribers('news') === 1, 10_000, 'subscribed')
    await until(
      () => {
        void a.hub.publish('news', 'warm-up').catch(() => {})
        return client.data().length > 0
      },
      10_000,
      'warm-up',
    )
    await redis.stop()
    await sleep(100)
    const payload = 'z'.repeat(1024)
    // Warm the failure path, then measure.
    for (let i = 0; i < 1000; i++) await a.hub.publish('news', payload).catch(() => {})
    const before = await settledHeap()
    let refused = 0
    for (let i = 0; i < 20_000; i++) {
      await a.hub.publish('news', payload).then(
        () => {},
        () => refused++,
      )
    }
    const after = await settledHeap()
    expect(refused).toBe(20_000)
    // 20 MB of payload was offered; none of it may be held.
    expect(mb(after - before)).toBeLessThan(3)
    await redis.start()
    await until(
      () => {
        void a.hub.publish('news', 'back').catch(() => {})
        return client.data().includes('back')
      },
      20_000,
      'delivery resumes',
    )
    console.info(JSON.stringify({ refusedWhileDown: refused, heapDeltaMb: mb(after - before) }))
    await client.stop()
  }, 60_000)
})

describe('hostile subscriptions', () => {
  test('a subscription to 100 000 topics gets a clear error, never a hang', async () => {
    const hub = new Broadcaster()
    hubs.push(hub)
    const closes: CloseReason[] = []
    const errors: unknown[] = []
    const server = await nodeServer((req, res) => {
      // A naive app: the topics come straight from the query string.
      const topics = new URL(req.url ?? '/', 'http://x').searchParams.getAll('t')
      sendEventStream(req, res, (ctx) => hub.subscribe(topics, ctx), {
        registry: new StreamRegistry(),
        onClose: (reason) => closes.push(reason),
        onError: (error) => errors.push(error),
      }).catch((error: unknown) => {
        errors.push(error)
        res.writeHead(400, { 'content-type': 'text/plain' }).end('bad subscription\n')
      })
    })
    // Through HTTP, the server's header limit already bounds what a client can ask for.
    const query = Array.from({ length: 100_000 }, (_, i) => `t=${i}`).join('&')
    const overHttp = await fetchText(`${server.url}/?${query}`).catch((error: Error) => ({
      status: 0,
      body: error.message,
      headers: {},
    }))
    expect([0, 400, 414, 431]).toContain(overHttp.status)

    // Called directly (topics from a POST body, say), the broadcaster itself must answer.
    const topics = Array.from({ length: 100_000 }, (_, i) => `topic-${i}`)
    const heapBefore = await settledHeap()
    const started = performance.now()
    let outcome = 'subscribed'
    try {
      hub.subscribe(topics).close()
    } catch (error) {
      expect(isSseError(error) && error.code).toBe('ERR_SSE_INVALID_OPTION')
      expect((error as Error).message).toContain('at most 1000 topics')
      expect((error as Error).message).toContain('received 100000')
      outcome = 'refused'
    }
    expect(outcome).toBe('refused')
    const ms = performance.now() - started
    await sleep(50)
    const heapAfter = await settledHeap()
    console.info(
      JSON.stringify({ outcome, ms: Math.round(ms), heapDeltaMb: mb(heapAfter - heapBefore) }),
    )
    expect(hub.subscribers()).toBe(0)
    expect(hub.stats().topics).toBe(0)
    expect(mb(heapAfter - heapBefore)).toBeLessThan(10)
  }, 60_000)

  test('a forged or huge Last-Event-ID is answered with a reset, not a crash or a scan', async () => {
    const hub = new Broadcaster()
    hubs.push(hub)
    await hub.publish('news', 'one')
    for (const lastEventId of [
      'x'.repeat(100_000),
      '0-99999999999999999999',
      'abc-1-2',
      '../../etc/passwd',
      '\u0000-1',
      '-1',
      'zzzzzzzzzzzzzzzz-999999999999999',
    ]) {
      const response = new EventSourceResponse(hub.subscribe('news', { lastEventId }), {
        registry: new StreamRegistry(),
      })
      const events: SseEvent[] = []
      for await (const event of iterateEvents(response, { timeout: 5000 })) {
        events.push(event)
        break
      }
      expect(events[0]?.event).toBe(RESET_EVENT)
    }
  })
})
