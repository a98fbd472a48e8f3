/**
 * The default broker: everything in this process, no dependencies.
 *
 * @module
 */

import { SseError } from '../errors.ts'
import { MAX_DELAY, unref } from '../util/delay.ts'
import { Deque } from '../util/deque.ts'
import {
  type Broker,
  type BrokerMessage,
  type BrokerSink,
  cutPage,
  type HistoryRead,
  pageShare,
} from './broker.ts'
import { newEpoch, type Position } from './event-id.ts'
import type { TopicListing, WildcardBroker } from './wildcard-broker.ts'

/** A message as the history keeps it: with the moment it expires. */
interface StoredMessage extends BrokerMessage {
  /** On the broker's clock (`performance.now()`); `Infinity`: never. */
  readonly expires: number
}

interface TopicHistory {
  messages: Deque<StoredMessage>
  /** The seq of the newest message dropped from `messages` (0: none). */
  trimmed: number
  /** The seq of the newest message published to the topic. */
  last: number
  /** When its newest message expires: the whole history has expired then. */
  expires: number
}

/** Expired topics forgotten by one publish, at most: a publish never pays for a backlog. */
const SWEEP_PER_PUBLISH = 64

/**
 * The longest the sweep timer waits beyond an expiry, and so the least time between two sweeps:
 * expired topics leave within about a second, for one timer wake-up a second at most.
 */
const SWEEP_GRANULARITY = 1000

/**
 * A broker inside one process: a bounded history per topic and synchronous delivery. The
 * default of {@link Broadcaster}. Use `RedisBroker` from `oven-sse/redis` when several
 * processes serve the same topics.
 *
 * Its epoch is new in every process, so a client that resumes after a server restart is told
 * that the history is gone rather than handed a wrong position.
 *
 * History is bounded by count and by age (the `ttl` of each publish, the Broadcaster's
 * `historyTtl`): a message older than that leaves the history (it counts as trimmed), and a
 * topic whose whole history has expired is forgotten entirely, so one topic per job or per
 * generation does not grow the process. What was forgotten is remembered as one number, the
 * highest `seq` of any forgotten topic (the watermark of the `Broker` contract), so a client
 * resuming from before an expired message is sent the reset event, never resumed past it.
 *
 * Cost: topics are kept in the order of their last publish; each publish moves its topic to the
 * end and forgets at most a few expired ones from the front, and an unref'd timer (cleared by
 * `close()`) forgets the rest within about a second of their expiry. Amortised O(1) per publish.
 *
 * @example
 * ```ts
 * const hub = new Broadcaster({ broker: new MemoryBroker(), history: 500 })
 * ```
 */
export class MemoryBroker implements Broker, WildcardBroker {
  readonly #epoch = newEpoch()
  /** Ordered by last publish: the front expires first (every publish of a hub has one ttl). */
  readonly #histories = new Map<string, TopicHistory>()
  readonly #listening = new Set<string>()
  /** Whether every topic is delivered (a pattern subscription is open): see `listenAll`. */
  #listeningAll = false
  #seq = 0
  /** The highest last `seq` of any forgotten topic: see the module comment of `broker.ts`. */
  #forgotten = 0
  /**
   * No topic expires before this (`performance.now()` time): a publish sweeps only from then.
   * A lower bound, as the front of `#histories` only moves to later expiries; reading the front
   * of a Map whose entries move on every publish walks the holes they leave, so it is not read
   * on every publish.
   */
  #sweepFrom = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  #sink: BrokerSink | undefined
  #closed = false

  /** How many topics have history kept (an expired topic leaves within about a second). */
  get size(): number {
    return this.#histories.size
  }

  attach(sink: BrokerSink): void {
    this.#sink = sink
  }

  publish(topic: string, payload: string, history: number, ttl = 0): Promise<Position> {
    if (this.#closed) {
      return Promise.reject(
        new SseError('ERR_SSE_BROKER', 'MemoryBroker is closed; the event was not published.'),
      )
    }
    const now = performance.now()
    const expires = ttl > 0 ? now + ttl : Number.POSITIVE_INFINITY
    if (now >= this.#sweepFrom) this.#sweep(now, SWEEP_PER_PUBLISH)
    const seq = ++this.#seq
    const message: StoredMessage = { topic, epoch: this.#epoch, seq, payload, expires }
    let entry = this.#unexpired(topic, now)
    if (entry) {
      // To the end: the map stays ordered by last publish.
      this.#histories.delete(topic)
      this.#expire(entry, now)
    } else {
      // New, or published again after being forgotten: positions before the watermark may have
      // missed its expired messages.
      entry = { messages: new Deque(), trimmed: this.#forgotten, last: 0, expires }
    }
    this.#histories.set(topic, entry)
    entry.messages.push(message)
    entry.last = seq
    entry.expires = expires
    if (expires < this.#sweepFrom) this.#sweepFrom = expires
    while (entry.messages.size > history) entry.trimmed = entry.messages.shift()!.seq
    if (ttl > 0 && this.#timer === undefined) this.#schedule(now)
    if (this.#listeningAll || this.#listening.has(topic)) this.#sink?.message(message)
    return Promise.resolve({ epoch: this.#epoch, seq })
  }

  listen(topic: string): Promise<void> {
    this.#listening.add(topic)
    return Promise.resolve()
  }

  unlisten(topic: string): Promise<void> {
    this.#listening.delete(topic)
    return Promise.resolve()
  }

  listenAll(): Promise<void> {
    this.#listeningAll = true
    return Promise.resolve()
  }

  unlistenAll(): Promise<void> {
    this.#listeningAll = false
    return Promise.resolve()
  }

  /**
   * One pass over the topics with history: paid once per resuming pattern subscription. A topic
   * whose whole history has expired is forgotten on the way (raising the watermark): left out
   * silently, a resume before its last message would skip it.
   */
  topicsAfter(after: number): Promise<TopicListing> {
    const now = performance.now()
    const topics: string[] = []
    for (const [topic, entry] of this.#histories) {
      if (entry.expires <= now) this.#forget(topic, entry)
      else if (entry.last > after) topics.push(topic)
    }
    return Promise.resolve({ topics, forgotten: this.#forgotten, head: this.#seq })
  }

  read(topics: readonly string[], after: number, limit: number): Promise<HistoryRead> {
    const perTopic = pageShare(limit, topics.length)
    const lists: BrokerMessage[][] = []
    const trimmed = new Map<string, number>()
    const now = performance.now()
    for (const topic of topics) {
      const entry = this.#unexpired(topic, now)
      if (entry) this.#expire(entry, now)
      // A topic never seen or forgotten: whatever it had is older than the watermark.
      trimmed.set(topic, entry?.trimmed ?? this.#forgotten)
      if (!entry || perTopic === 0) continue
      const list = entry.messages
      // Binary search for the first message after `after`: seqs ascend within a topic.
      let low = 0
      let high = list.size
      while (low < high) {
        const mid = (low + high) >>> 1
        if (list.at(mid).seq <= after) low = mid + 1
        else high = mid
      }
      const page: BrokerMessage[] = []
      for (let i = low; i < list.size && page.length < perTopic; i++) page.push(list.at(i))
      lists.push(page)
    }
    const { messages, through } = cutPage(lists, perTopic, after, this.#seq)
    return Promise.resolve({ epoch: this.#epoch, head: this.#seq, messages, through, trimmed })
  }

  close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#listening.clear()
    this.#listeningAll = false
    this.#histories.clear()
    return Promise.resolve()
  }

  /** The topic's history, unless its whole history has expired: then it is forgotten. */
  #unexpired(topic: string, now: number): TopicHistory | undefined {
    const entry = this.#histories.get(topic)
    if (entry === undefined || entry.expires > now) return entry
    this.#forget(topic, entry)
    return undefined
  }

  /** Drops the topic's expired messages; they count as trimmed. */
  #expire(entry: TopicHistory, now: number): void {
    const { messages } = entry
    while (messages.size > 0 && messages.at(0).expires <= now) {
      entry.trimmed = messages.shift()!.seq
    }
  }

  /** Forgets a topic whose whole history has expired, raising the watermark. */
  #forget(topic: string, entry: TopicHistory): void {
    this.#histories.delete(topic)
    if (entry.last > this.#forgotten) this.#forgotten = entry.last
  }

  /** Forgets up to `budget` expired topics, from the front (the least recently published). */
  #sweep(now: number, budget: number): void {
    for (const [topic, entry] of this.#histories) {
      if (entry.expires > now) {
        this.#sweepFrom = entry.expires
        return
      }
      if (budget-- <= 0) return
      this.#forget(topic, entry)
    }
    this.#sweepFrom = Number.POSITIVE_INFINITY
  }

  /** Arms the sweep timer for the front topic's expiry, if any topic can expire. */
  #schedule(now: number): void {
    for (const entry of this.#histories.values()) {
      if (entry.expires === Number.POSITIVE_INFINITY) return
      const delay = Math.min(Math.max(entry.expires - now, SWEEP_GRANULARITY), MAX_DELAY)
      this.#timer = setTimeout(this.#onTimer, Math.ceil(delay))
      unref(this.#timer)
      return
    }
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined
    if (this.#closed) return
    const now = performance.now()
    this.#sweep(now, Number.POSITIVE_INFINITY)
    this.#schedule(now)
  }
}
