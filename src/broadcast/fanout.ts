/**
 * The fan-out: a broadcaster's topics on this process, the subscriptions of each, and the
 * delivery of every live message to the subscribers of its topic.
 *
 * It is the one object behind both callback interfaces of the broadcast machinery: the live
 * feed's {@link FeedHost} (which topics to catch up on, deliver, history news) and every
 * subscription's {@link SubscriptionHost} (join, leave, read, decode, wake, drop). The
 * broadcaster itself keeps only what its callers see: options, checks, publish and subscribe.
 *
 * @internal
 * @module
 */

import { publishTimes } from '../diagnostics/channels.ts'
import type { ServerSentEvent } from '../encoder/encode.ts'
import { scheduleAfterBurst } from '../stream/schedule.ts'
import type { ClientDropper } from '../stream/source.ts'
import { type PrivateTopics, segmentsOf } from './authorize.ts'
import { type Broker, type BrokerMessage, type HistoryRead, READ_PAGE } from './broker.ts'
import { DecodedEvents } from './decoded-events.ts'
import { type FeedHost, LiveFeed } from './live-feed.ts'
import { PatternTrie } from './pattern-trie.ts'
import { PendingPublishes } from './pending-publishes.ts'
import type { CatchUpGap, MutableStats, Subscription, SubscriptionHost } from './subscription.ts'
import type { Pattern } from './topic-pattern.ts'
import { type TopicListing, type WildcardBroker, wildcardOf } from './wildcard-broker.ts'

interface Topic {
  readonly subscriptions: Set<Subscription>
  listening: Promise<void>
}

/** One requested pattern of one subscription, as the pattern trie holds it. */
interface PatternEntry {
  readonly subscription: Subscription
  readonly pattern: Pattern
}

/** A broadcaster's topics and subscriptions on this process; see the module comment. */
export class Fanout implements FeedHost, SubscriptionHost {
  readonly stats: MutableStats = {
    published: 0,
    delivered: 0,
    dropped: 0,
    disconnected: 0,
    resets: 0,
  }
  /** The process-wide live feed: messages of every listened topic, in seq order. */
  readonly feed: LiveFeed
  /** Publish times of events published here, while observed (see pending-publishes.ts). */
  readonly pending = new PendingPublishes()
  readonly #broker: Broker
  readonly #onError: (error: unknown) => void
  readonly #topics = new Map<string, Topic>()
  /** How many subscriptions joined and have not left (each is in its topics' sets). */
  #subscriptionCount = 0
  readonly #decoded = new DecodedEvents()
  /** Subscriptions to patterns, by pattern: a message finds its matches without a scan. */
  readonly #patterns = new PatternTrie<PatternEntry>()
  readonly #entries = new Map<Subscription, PatternEntry[]>()
  readonly #wildcard: WildcardBroker | undefined
  /** Resolves once the broker delivers every topic; set while a pattern subscription is open. */
  #listeningAll: Promise<void> | undefined
  readonly privateTopics: PrivateTopics
  #toWake: Subscription[] = []
  #toDrop: ClientDropper[] = []
  #closed = false

  /**
   * @param owner - the broadcaster, as diagnostics messages name it.
   */
  constructor(
    broker: Broker,
    onError: (error: unknown) => void,
    owner: object,
    privateTopics: PrivateTopics,
  ) {
    this.#broker = broker
    this.#wildcard = wildcardOf(broker)
    this.privateTopics = privateTopics
    this.#onError = onError
    this.feed = new LiveFeed(this, owner)
  }

  /** How many subscriptions this process has, on `topic` or in all. */
  subscriberCount(topic?: string): number {
    if (topic === undefined) return this.#subscriptionCount
    return this.#topics.get(topic)?.subscriptions.size ?? 0
  }

  /** Whether the broker can serve pattern subscriptions (see wildcard-broker.ts). */
  get servesPatterns(): boolean {
    return this.#wildcard !== undefined
  }

  /** How many topics have a subscriber on this process. */
  get topicCount(): number {
    return this.#topics.size
  }

  /** Ends the feed and every subscription; topics are no longer unlistened one by one. */
  close(): void {
    this.#closed = true
    this.feed.close()
    for (const subscription of this.#allSubscriptions()) subscription.close()
  }

  // ---- the live feed's host ------------------------------------------------------------------

  /**
   * The topics listened to here and, while patterns are subscribed, the topics with history
   * since `after` that some pattern matches: a catch-up after an outage reads both.
   */
  async catchUpTopics(after: number): Promise<TopicListing> {
    const topics = new Set(this.#topics.keys())
    if (this.#patterns.size === 0) {
      return { topics: [...topics], forgotten: 0, head: Number.POSITIVE_INFINITY }
    }
    const listing = await this.#wildcard!.topicsAfter(after)
    for (const topic of listing.topics) {
      if (topics.has(topic)) continue
      let matched = false
      this.#patterns.match(segmentsOf(topic), () => {
        matched = true
      })
      if (matched) topics.add(topic)
    }
    return { topics: [...topics], forgotten: listing.forgotten, head: listing.head }
  }

  readCatchUp(topics: readonly string[], after: number): Promise<HistoryRead> {
    return this.#broker.read(topics, after, READ_PAGE)
  }

  /**
   * A live message, in order (see `LiveFeed`): to every subscriber of its topic here, and to
   * every pattern subscription that matches and admits it. While a pattern is subscribed the
   * broker delivers every topic, most of them wanted by no one here: those are matched and
   * dropped without being decoded.
   */
  deliver(message: BrokerMessage): void {
    const topic = this.#topics.get(message.topic)
    const publishedAt = this.pending.take(message.payload)
    const exact = topic !== undefined && topic.subscriptions.size > 0
    let reached: PatternEntry[] | undefined
    if (this.#patterns.size > 0) {
      const segments = segmentsOf(message.topic)
      this.#patterns.match(segments, (entry) => {
        if (entry.subscription.admits(entry.pattern, segments)) (reached ??= []).push(entry)
      })
    }
    if (!exact && reached === undefined) return
    let event: ServerSentEvent
    try {
      event = this.#decoded.decode(message)
    } catch (error) {
      this.report(error)
      return
    }
    if (publishedAt !== undefined) publishTimes.set(event, publishedAt)
    if (exact) for (const subscription of topic.subscriptions) subscription.offer(message, event)
    // A subscription reached twice (a topic and a pattern, two patterns) takes the first offer:
    // the second has a position it already has.
    if (reached) for (const { subscription } of reached) subscription.offer(message, event)
  }

  epochChanged(epoch: string): void {
    for (const subscription of this.#allSubscriptions()) subscription.epochChanged(epoch)
  }

  checkTrimmed(read: HistoryRead, gap: CatchUpGap): void {
    for (const subscription of this.#allSubscriptions()) {
      subscription.checkTrimmed(read.epoch, read.head, read.trimmed, gap)
    }
  }

  report(error: unknown): void {
    try {
      this.#onError(error)
    } catch (hookError) {
      console.error('[oven-sse] broadcaster onError threw:', hookError, error)
    }
  }

  /**
   * Every subscription, once each, from the topics' sets and the pattern entries: for the rare
   * events that reach all of them (an epoch change, a catch-up, closing), so that a subscriber
   * is not also kept in a set of its own.
   */
  #allSubscriptions(): Set<Subscription> {
    const all = new Set<Subscription>(this.#entries.keys())
    for (const topic of this.#topics.values()) {
      for (const subscription of topic.subscriptions) all.add(subscription)
    }
    return all
  }

  // ---- every subscription's host -------------------------------------------------------------

  join(subscription: Subscription): Promise<void> {
    this.#subscriptionCount++
    const waits: Promise<void>[] = []
    for (const name of subscription.topics) {
      let topic = this.#topics.get(name)
      if (!topic) {
        topic = { subscriptions: new Set(), listening: this.#broker.listen(name) }
        this.#topics.set(name, topic)
        const created = topic
        // A failed listen is retried by the next subscriber instead of being remembered.
        created.listening.catch(() => {
          if (this.#topics.get(name) === created) this.#topics.delete(name)
        })
      }
      topic.subscriptions.add(subscription)
      waits.push(topic.listening)
    }
    if (subscription.wildcards.length > 0) waits.push(this.#joinPatterns(subscription))
    return Promise.all(waits).then(() => undefined)
  }

  #joinPatterns(subscription: Subscription): Promise<void> {
    const wildcard = this.#wildcard!
    const entries = subscription.wildcards.map((pattern) => ({ subscription, pattern }))
    this.#entries.set(subscription, entries)
    for (const entry of entries) this.#patterns.add(entry.pattern, entry)
    if (!this.#listeningAll) {
      const listening = wildcard.listenAll()
      this.#listeningAll = listening
      // A failed listen is retried by the next pattern subscriber.
      listening.catch(() => {
        if (this.#listeningAll === listening) this.#listeningAll = undefined
      })
    }
    return this.#listeningAll
  }

  #leavePatterns(subscription: Subscription): void {
    const entries = this.#entries.get(subscription)
    if (!entries) return
    this.#entries.delete(subscription)
    for (const entry of entries) this.#patterns.delete(entry.pattern, entry)
    if (this.#entries.size > 0 || !this.#listeningAll) return
    this.#listeningAll = undefined
    if (!this.#closed) this.#wildcard!.unlistenAll().catch((error: unknown) => this.report(error))
  }

  topicsAfter(after: number): Promise<TopicListing> {
    return this.#wildcard!.topicsAfter(after)
  }

  leave(subscription: Subscription): void {
    // Called once per joined subscription (when it closes).
    this.#subscriptionCount--
    this.#leavePatterns(subscription)
    for (const name of subscription.topics) {
      const topic = this.#topics.get(name)
      if (!topic) continue
      topic.subscriptions.delete(subscription)
      if (topic.subscriptions.size === 0) {
        this.#topics.delete(name)
        if (!this.#closed) {
          this.#broker.unlisten(name).catch((error: unknown) => this.report(error))
        }
      }
    }
  }

  async read(topics: readonly string[], after: number, limit: number): Promise<HistoryRead> {
    // A subscription reads after a catch-up in progress has finished: the catch-up's snapshot
    // may predate the subscription's topics, and the held live messages it then releases must
    // not race the subscription's own read.
    await this.feed.whenCaughtUp()
    const read = await this.#broker.read(topics, after, limit)
    this.feed.sawEpoch(read.epoch)
    return read
  }

  decode(message: BrokerMessage): ServerSentEvent {
    return this.#decoded.decode(message)
  }

  /**
   * The payload being published on this process and its event, while the broker's `publish`
   * runs (`undefined` after): see {@link DecodedEvents.publishing}.
   */
  publishing(payload: string | undefined, event: ServerSentEvent | undefined): void {
    this.#decoded.publishing(payload, event)
  }

  /** Batching point: subscriptions woken in one burst are woken together, once each. */
  scheduleWake(subscription: Subscription): void {
    this.#toWake.push(subscription)
    // Woken once per burst: events published together reach each stream together.
    if (this.#toWake.length === 1) scheduleAfterBurst(this.#wakeAll, undefined)
  }

  /** After the delivery loop that overflowed them: a microtask runs once the loop is over. */
  afterDelivery(stream: ClientDropper): void {
    this.#toDrop.push(stream)
    if (this.#toDrop.length === 1) queueMicrotask(this.#dropAll)
  }

  readonly #wakeAll = (): void => {
    const woken = this.#toWake
    this.#toWake = []
    for (const subscription of woken) subscription.wake()
  }

  readonly #dropAll = (): void => {
    const drops = this.#toDrop
    this.#toDrop = []
    for (const stream of drops) stream.dropClient()
  }
}
