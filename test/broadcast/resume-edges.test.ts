/**
 * Resume at its edges: a client that reconnects with the id of the very last event resumes
 * without a reset; missing exactly `maxResume` events is still a resume; an id from another
 * history is "lost", not "invalid"; a resume past what the history still holds is "expired";
 * and an epoch is always ten characters, even when its random bits start with zeros.
 */

import { afterEach, expect, test, vi } from 'vitest'
import {
  Broadcaster,
  type BroadcasterOptions,
  MemoryBroker,
  RESET_EVENT,
  type ServerSentEvent,
  type Subscription,
} from '../../src/index.ts'
import { waitFor, within } from '../helpers/wait.ts'

const hubs: Broadcaster[] = []
afterEach(async () => {
  vi.restoreAllMocks()
  await Promise.all(hubs.splice(0).map((hub) => hub.close()))
})

function makeHub(options: BroadcasterOptions = {}): Broadcaster {
  const hub = new Broadcaster(options)
  hubs.push(hub)
  return hub
}

/** Reads `count` events the subscription has ready (it is live: they are queued). */
async function take(subscription: Subscription, count: number): Promise<ServerSentEvent[]> {
  const iterator = subscription[Symbol.asyncIterator]()
  const events: ServerSentEvent[] = []
  for (let i = 0; i < count; i++) {
    const { value, done } = await iterator.next()
    if (done) throw new Error(`the subscription ended after ${i} events`)
    events.push(value)
  }
  return events
}

async function publishAll(hub: Broadcaster, topic: string, count: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < count; i++) ids.push(await hub.publish(topic, `e${i}`))
  return ids
}

test('reconnecting with the id of the last event resumes: no reset, the next event arrives', async () => {
  const hub = makeHub()
  const ids = await publishAll(hub, 't', 2)
  const subscription = hub.subscribe('t', { lastEventId: ids[1] })
  await subscription.ready
  expect(subscription.size).toBe(0)
  const next = await hub.publish('t', 'after')
  const [event] = await take(subscription, 1)
  expect(event).toMatchObject({ id: next, data: 'after' })
  expect(hub.stats().resets).toBe(0)
})

test('an empty Last-Event-ID is a new subscriber: no reset, live from now', async () => {
  const hub = makeHub()
  await publishAll(hub, 't', 2)
  const subscription = hub.subscribe('t', { lastEventId: '' })
  await subscription.ready
  expect(subscription.size).toBe(0)
  await hub.publish('t', 'live')
  expect((await take(subscription, 1)).map((event) => event.data)).toEqual(['live'])
  expect(hub.stats().resets).toBe(0)
})

test('missing exactly maxResume events is a resume; one more is a reset', async () => {
  const hub = makeHub({ maxResume: 3 })
  const ids = await publishAll(hub, 't', 5)
  const exact = hub.subscribe('t', { lastEventId: ids[1] })
  await exact.ready
  expect((await take(exact, 3)).map((event) => event.data)).toEqual(['e2', 'e3', 'e4'])
  expect(hub.stats().resets).toBe(0)

  const over = hub.subscribe('t', { lastEventId: ids[0] })
  await over.ready
  const [reset] = await take(over, 1)
  expect(reset?.event).toBe(RESET_EVENT)
  expect(JSON.parse(reset?.data ?? '')).toEqual({ reason: 'expired', topics: ['t'] })
})

test('an id from another history, however far ahead, is "lost"', async () => {
  const hub = makeHub()
  const [id] = await publishAll(hub, 't', 1)
  const foreign = `${id?.startsWith('z') ? 'y' : 'z'}${id?.slice(1, 10)}-999999`
  const subscription = hub.subscribe('t', { lastEventId: foreign })
  await subscription.ready
  const [reset] = await take(subscription, 1)
  expect(reset?.event).toBe(RESET_EVENT)
  expect(JSON.parse(reset?.data ?? '')).toEqual({ reason: 'lost', topics: ['t'] })
  expect(reset?.id).toBe(`${id?.slice(0, 10)}-1`)
})

test('a resume from before what the history still holds is "expired"', async () => {
  const hub = makeHub({ broker: new MemoryBroker(), history: 2 })
  const ids = await publishAll(hub, 't', 5)
  const subscription = hub.subscribe('t', { lastEventId: ids[0] })
  await subscription.ready
  const [reset] = await take(subscription, 1)
  expect(reset?.event).toBe(RESET_EVENT)
  expect(JSON.parse(reset?.data ?? '')).toEqual({ reason: 'expired', topics: ['t'] })
  expect(reset?.id).toBe(ids[4])
})

test('an epoch is ten base-36 characters even when its random bits are all zero', async () => {
  vi.spyOn(globalThis.crypto, 'getRandomValues').mockImplementation((array) => {
    if (array instanceof Uint8Array) array.fill(0)
    return array
  })
  const hub = makeHub({ broker: new MemoryBroker() })
  expect(await hub.publish('t', 'x')).toBe('0000000000-1')
})

/**
 * A memory broker that answers one chosen history read only at `release()`, with the history as
 * it was when the read was made (a slow reply from a remote broker).
 */
class HeldReads extends MemoryBroker {
  #untilHeld = 0
  #release: (() => void) | undefined
  /** Reads waiting now. */
  waiting = 0

  /** Holds the `nth` read from now (1: the next one). */
  holdRead(nth: number): void {
    this.#untilHeld = nth
  }

  release(): void {
    this.#release?.()
  }

  override async read(topics: readonly string[], after: number, limit: number) {
    const read = await super.read(topics, after, limit)
    if (this.#untilHeld > 0 && --this.#untilHeld === 0) {
      this.waiting++
      await new Promise<void>((resolve) => {
        this.#release = resolve
      })
      this.waiting--
    }
    return read
  }
}

test('more live events than a resuming subscriber can hold arrive during its read: read again, none lost or twice', async () => {
  const broker = new HeldReads()
  // A queue of 16 holds at most 256 live events while the subscription sets up.
  const hub = makeHub({ broker, queue: 16, overflow: 'disconnect' })
  const ids = await publishAll(hub, 't', 3)
  // A resume reads twice: where the history stands, then what the client missed. The second
  // answer is held, so it stays as old as it was asked.
  broker.holdRead(2)
  const subscription = hub.subscribe('t', { lastEventId: ids[0] })
  await waitFor('the read of what was missed to be under way', () => broker.waiting, {
    until: (n) => n === 1,
  })
  // 300 live events meanwhile: more than it may hold, so it must read them instead.
  const later = await publishAll(hub, 't', 300)
  broker.release()
  await subscription.ready
  const events = await within(take(subscription, 302), 10_000, 'the 302 events after the resume id')
  expect(events.map((event) => event.id)).toEqual([ids[1], ids[2], ...later])
  expect(hub.stats().resets).toBe(0)
  expect(hub.stats().disconnected).toBe(0)
})
