/**
 * The `Broker` contract (src/broadcast/broker.ts) as one suite, run against every broker by
 * `brokers.test.ts`: a new broker is one factory there. Each test names the guarantee it checks;
 * everything goes over real sockets (a Broadcaster behind node:http, read by a real SSE client)
 * and, for the shared brokers, through a real server.
 *
 * A `shared` broker is several instances on one store (Redis, NATS): a factory call with the
 * same `group` is another process's broker. The cross-instance tests run for those only.
 */

import { afterEach, describe, expect, test } from 'vitest'
import {
  Broadcaster,
  type BroadcasterOptions,
  type Broker,
  type BrokerMessage,
  EventSourceResponse,
  RESET_EVENT,
} from '../../src/index.ts'
import { iterateEvents, readEvents, shortDurations } from '../../src/testing.ts'
import { closeAllServers } from '../helpers/servers.ts'
import { Teardown } from '../helpers/teardown.ts'
import { waitFor } from '../helpers/wait.ts'
import { hubServer, takeHubServerErrors } from './hub-server.ts'

/** How the suite makes brokers of one kind. */
export interface BrokerFactory {
  /** Brokers made with one `group` share topics, history and ids (several instances). */
  readonly shared: boolean
  /** A new broker; called inside tests, so a server started in `beforeAll` is up. */
  make(group: string): Broker
  /**
   * A broker whose server is not there, with a `commandTimeout` of `timeout` ms (shared brokers
   * only), and what frees the address afterwards.
   */
  unreachable?(timeout: number): Promise<{ broker: Broker; release(): Promise<void> }>
}

// Long enough that an event published just before a resume is still there under load; short
// enough that waiting for an expiry costs about a second.
const TTL = 1500

const seqOf = (id: string) => Number(id.slice(id.lastIndexOf('-') + 1))
const epochOf = (id: string) => id.slice(0, id.lastIndexOf('-'))
const dataOf = (message: BrokerMessage) => JSON.parse(message.payload).d as string

const resetReason = (event: { event?: string | undefined; data: string }) =>
  event.event === RESET_EVENT ? (JSON.parse(event.data) as { reason: string }).reason : undefined

let groups = 0

/** Registers the contract suite for one kind of broker. */
export function brokerContract(name: string, factory: BrokerFactory): void {
  describe(`Broker contract: ${name}`, () => {
    const cleanup = new Teardown()
    const hubErrors: unknown[] = []
    afterEach(async () => {
      try {
        await cleanup.run()
      } finally {
        await closeAllServers()
      }
      expect(takeHubServerErrors()).toEqual([])
      expect(hubErrors.splice(0)).toEqual([])
    })

    const group = () => `c${name}${++groups}`
    function hub(options: BroadcasterOptions = {}, inGroup = group()) {
      const made = new Broadcaster({
        broker: factory.make(inGroup),
        onError: (error) => hubErrors.push(error),
        ...options,
      })
      cleanup.push(() => made.close())
      return made
    }

    test('publish assigns one increasing sequence across topics, in one epoch', async () => {
      const h = hub()
      const ids = [await h.publish('a', '1'), await h.publish('b', '2'), await h.publish('a', '3')]
      const seqs = ids.map(seqOf)
      expect(seqs[0]).toBeGreaterThan(0)
      expect(seqs[1]).toBeGreaterThan(seqs[0]!)
      expect(seqs[2]).toBeGreaterThan(seqs[1]!)
      expect(new Set(ids.map(epochOf)).size).toBe(1)
    })

    test('read: messages after a position, head, and a complete prefix per page', async () => {
      const broker = factory.make(group())
      const h = new Broadcaster({ broker, onError: (error) => hubErrors.push(error) })
      cleanup.push(() => h.close())
      const ids: string[] = []
      for (let i = 0; i < 12; i++) ids.push(await h.publish(i % 3 === 0 ? 'x' : 'y', `e${i}`))
      const all = await broker.read(['x', 'y'], seqOf(ids[1]!), 100)
      expect(all.head).toBe(seqOf(ids[11]!))
      expect(all.through).toBe(all.head)
      expect(all.epoch).toBe(epochOf(ids[0]!))
      expect(all.messages.map(dataOf)).toEqual(ids.slice(2).map((_, i) => `e${i + 2}`))
      expect(all.messages.map((m) => m.seq)).toEqual(ids.slice(2).map(seqOf))
      // A small page: a complete prefix up to `through`, and the next page starts after it.
      const page = await broker.read(['x', 'y'], 0, 4)
      expect(page.through).toBeLessThan(page.head)
      expect(page.messages.map((m) => m.seq)).toEqual(
        ids.map(seqOf).filter((seq) => seq <= page.through),
      )
      // Limit 0: the epoch, head and trim points only.
      const none = await broker.read(['x'], 0, 0)
      expect(none).toMatchObject({ messages: [], head: all.head, epoch: all.epoch })
      expect(none.trimmed.get('x')).toBe(0)
      // Only the topics asked for.
      const onlyX = await broker.read(['x'], 0, 100)
      expect(onlyX.messages.map(dataOf)).toEqual(['e0', 'e3', 'e6', 'e9'])
    })

    test('history is bounded by count: the trimmed point is reported, older resumes reset', async () => {
      const h = hub({ history: 3 })
      const server = await hubServer(h)
      const old = await h.publish('t', 'a')
      const b = await h.publish('t', 'b')
      for (const data of ['c', 'd', 'e']) await h.publish('t', data)
      // The id just before the oldest kept event still resumes, exactly.
      const resumed = await readEvents(server.stream('t'), { lastEventId: b, count: 3 })
      expect(resumed.map((event) => event.data)).toEqual(['c', 'd', 'e'])
      // An older one is told it cannot, then gets live events.
      const received = readEvents(server.stream('t'), { lastEventId: old, count: 2 })
      await server.live(2)
      const next = await h.publish('t', 'live')
      const [reset, live] = await received
      expect(resetReason(reset!)).toBe('expired')
      expect(live).toMatchObject({ id: next, data: 'live' })
    })

    test('history 0 keeps nothing: any resume is a reset', async () => {
      const h = hub({ history: 0 })
      const first = await h.publish('t', 'a')
      await h.publish('t', 'b')
      const events = await readEvents(
        new EventSourceResponse(h.subscribe('t', { lastEventId: first })),
        { count: 1 },
      )
      expect(resetReason(events[0]!)).toBe('expired')
    })

    test('listen, then read: a resume loses nothing while events are published', async () => {
      const h = hub()
      const server = await hubServer(h)
      const total = 200
      const received: number[] = []
      let lastId: string | undefined
      const round = () =>
        readEvents(server.stream('x', 'y'), {
          count: Math.min(total - received.length, 10),
          timeout: 15_000,
          ...(lastId === undefined ? {} : { lastEventId: lastId }),
        })
      const first = round()
      await server.live(1)
      let published = 0
      const publisher = (async () => {
        while (published < total) await h.publish(published % 2 ? 'x' : 'y', String(published++))
      })()
      for (let index = 0; index < 60 && received.length < total; index++) {
        for (const event of await (index === 0 ? first : round())) {
          expect(event.event).not.toBe(RESET_EVENT)
          received.push(Number(event.data))
          lastId = event.id
        }
      }
      await publisher
      expect(received).toEqual(Array.from({ length: total }, (_, i) => i))
    })

    test('a resume far back is read in pages, exactly, across uneven topics', async () => {
      const h = hub({ history: 3000 })
      const server = await hubServer(h)
      const ids: string[] = []
      for (let i = 0; i < 1300; i++) {
        const topic = i % 7 === 0 ? 'rare' : i % 2 === 0 ? 'even' : 'odd'
        ids.push(await h.publish(topic, `e${i}`))
      }
      const events = await readEvents(server.stream('odd', 'even', 'rare'), {
        lastEventId: ids[9]!,
        count: 1290,
        timeout: 20_000,
      })
      expect(events.map((event) => event.id)).toEqual(ids.slice(10))
    }, 30_000)

    test('an id from another history is lost; malformed and future ids are invalid', async () => {
      const h = hub()
      const server = await hubServer(h)
      const id = await h.publish('t', 'x')
      const epoch = epochOf(id)
      const other = epoch === 'zzzzzzzzzz' ? 'yyyyyyyyyy' : 'zzzzzzzzzz'
      const [lost] = await readEvents(server.stream('t'), { lastEventId: `${other}-1`, count: 1 })
      expect(resetReason(lost!)).toBe('lost')
      for (const lastEventId of ['garbage', `${epoch}-01`, `${epoch}-99999`, 'x'.repeat(8000)]) {
        const [event] = await readEvents(server.stream('t'), { count: 1, lastEventId })
        expect(resetReason(event!)).toBe('invalid')
      }
      const [again] = await readEvents(server.stream('t'), { count: 1, lastEventId: `${epoch}-0` })
      expect(again).toMatchObject({ id, data: 'x' })
    })

    test('topic names: a lone surrogate is refused; an emoji and U+FFFD stay apart', async () => {
      const h = hub()
      const server = await hubServer(h)
      await expect(h.publish('user:alice\uD800', 'x')).rejects.toMatchObject({
        code: 'ERR_SSE_INVALID_OPTION',
      })
      // Spaces, dots and '>' mean something to NATS subjects; '*' is Oven's own pattern character,
      // refused in a published topic (test/broadcast/topic-patterns.test.ts).
      const emoji = 'user:\uD83D\uDE00 with spaces.and.dots>'
      const received = readEvents(server.stream(emoji), { count: 1 })
      await server.live(1)
      await h.publish('user:\uFFFD with spaces.and.dots>', 'not yours')
      const id = await h.publish(emoji, 'yours')
      expect(await received).toEqual([expect.objectContaining({ id, data: 'yours' })])
    })

    test('a closed broker refuses publish with ERR_SSE_BROKER', async () => {
      const broker = factory.make(group())
      await broker.publish('t', '{"d":"x"}', 10)
      await broker.close()
      await expect(broker.publish('t', '{"d":"y"}', 10)).rejects.toMatchObject({
        code: 'ERR_SSE_BROKER',
      })
    })

    describe('history bounded by age (historyTtl)', () => {
      const ttlHub = (inGroup = group()) => {
        const broker = factory.make(inGroup)
        const made = new Broadcaster(
          shortDurations({
            broker,
            historyTtl: TTL,
            onError: (error: unknown) => hubErrors.push(error),
          }),
        )
        cleanup.push(() => made.close())
        return { broker, hub: made }
      }
      const expired = (broker: Broker, topic: string, seq: number) =>
        waitFor(
          `${topic} reported trimmed through ${seq}`,
          async () => (await broker.read([topic], 0, 0)).trimmed.get(topic) ?? 0,
          { until: (trimmed) => trimmed >= seq, interval: 20 },
        )
      const firstOnResume = (url: string, lastEventId: string) =>
        readEvents(url, { lastEventId, count: 1, timeout: 5000 })

      test('an expired event leaves the history: a resume from before it gets an expired reset', async () => {
        const { broker, hub: h } = ttlHub()
        const server = await hubServer(h)
        const before = await h.publish('other', 'x')
        const first = await h.publish('feed', 'e1')
        await expired(broker, 'feed', seqOf(first))
        const second = await h.publish('feed', 'e2')
        const [next] = await firstOnResume(server.stream('feed'), first)
        expect(next).toMatchObject({ data: 'e2', id: second })
        const [reset] = await firstOnResume(server.stream('feed'), before)
        expect(resetReason(reset!)).toBe('expired')
      })

      test('no silent gap: a resume into a forgotten topic, or into it published again, is a reset', async () => {
        const { broker, hub: h } = ttlHub()
        const server = await hubServer(h)
        const first = await h.publish('job', 'e1')
        const second = await h.publish('job', 'e2')
        await expired(broker, 'job', seqOf(second))
        const [reset] = await firstOnResume(server.stream('job'), first)
        expect(resetReason(reset!)).toBe('expired')
        const third = await h.publish('job', 'e3')
        const [fresh] = await firstOnResume(server.stream('job'), second)
        expect(fresh).toMatchObject({ data: 'e3', id: third })
        const [again] = await firstOnResume(server.stream('job'), first)
        expect(resetReason(again!)).toBe('expired')
        const [unknown] = await firstOnResume(server.stream('never'), first)
        expect(resetReason(unknown!)).toBe('expired')
        const tail = await h.publish('never', 'n1')
        const [recent] = await firstOnResume(server.stream('never'), third)
        expect(recent).toMatchObject({ data: 'n1', id: tail })
      })

      test('live subscribers are unaffected: every event arrives once, across expiries', async () => {
        const { broker, hub: h } = ttlHub()
        const server = await hubServer(h)
        const reading = readEvents(server.stream('live'), { count: 3, timeout: 5000 })
        await server.live(1)
        const a = await h.publish('live', 'a')
        await expired(broker, 'live', seqOf(a))
        await h.publish('live', 'b')
        await h.publish('live', 'c')
        expect((await reading).map((event) => event.data)).toEqual(['a', 'b', 'c'])
      })
    })

    if (!factory.shared) return

    describe('several instances on one store', () => {
      test('an event published on either instance reaches the subscribers of both, in order', async () => {
        const shared = group()
        const [one, two] = [hub({}, shared), hub({}, shared)]
        const servers = [await hubServer(one), await hubServer(two)]
        const readers = servers.map((server) => readEvents(server.stream('fan'), { count: 4 }))
        for (const server of servers) await server.live(1)
        const ids: string[] = []
        for (let i = 0; i < 4; i++) ids.push(await (i % 2 ? two : one).publish('fan', `m${i}`))
        for (const events of await Promise.all(readers)) {
          expect(events.map((event) => event.id)).toEqual(ids)
        }
        expect(new Set(ids.map(epochOf)).size).toBe(1)
      })

      test('a client that moves to the other instance with Last-Event-ID gets exactly what it missed', async () => {
        const shared = group()
        const [one, two] = [hub({}, shared), hub({}, shared)]
        const [a, b] = [await hubServer(one), await hubServer(two)]
        const first = readEvents(a.stream('move', 'aside'), { count: 2 })
        await a.live(1)
        await two.publish('move', 'm1')
        await one.publish('aside', 'm2')
        const seen = await first
        await one.publish('move', 'm3')
        await two.publish('unrelated', 'not for it')
        await two.publish('aside', 'm4')
        const got: string[] = []
        for await (const event of iterateEvents(b.stream('move', 'aside'), {
          lastEventId: seen[1]!.id,
          timeout: 15_000,
        })) {
          got.push(event.data)
          if (got.length === 2) await one.publish('move', 'm5')
          if (got.length === 3) break
        }
        expect(got).toEqual(['m3', 'm4', 'm5'])
      })

      test('with no server at all, publish rejects with a clear error within commandTimeout', async () => {
        const { broker, release } = await factory.unreachable!(500)
        const h = new Broadcaster({ broker, onError: (error) => hubErrors.push(error) })
        try {
          const started = Date.now()
          const error = await h.publish('t', 'x').then(
            () => undefined,
            (reason: unknown) => reason,
          )
          expect(error).toMatchObject({
            code: 'ERR_SSE_BROKER',
            message: expect.stringMatching(/unreachable; the event was not published/),
          })
          // A hang guard: the first publish waits up to commandTimeout (500 ms) for a first
          // connection, then refuses; 5000 is ten times that.
          expect(Date.now() - started).toBeLessThan(5000)
        } finally {
          await h.close()
          await release()
        }
      })
    })
  })
}
