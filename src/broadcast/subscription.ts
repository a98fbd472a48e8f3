/**
 * One subscriber of a {@link Broadcaster}: a bounded queue fed by the broadcaster, read by one
 * event stream.
 *
 * A subscription starts in *setup*: it is registered with its topics at once (live messages are
 * held aside), the broker starts listening, then the history is read. What the client missed
 * (the history after its `Last-Event-ID`) is served first, then the held and later live
 * messages whose `seq` is beyond what the history covered. Because listening was active before
 * the read, every message is in one or the other; because positions are one shared sequence,
 * "beyond" is one comparison. So the hand-over has no gap and no duplicate.
 *
 * @module
 */

import { overflow } from '../diagnostics/channels.ts'
import { ServerSentEvent } from '../encoder/encode.ts'
import { SseError } from '../errors.ts'
import {
  offStreamEnd,
  onStreamEnd,
  type StreamEndListener,
  type StreamEnds,
} from '../stream/context.ts'
import {
  type ClientDropper,
  isThenable,
  nextByHand,
  type Puller,
  pullInto,
  type Receiver,
  takeClientDropper,
} from '../stream/source.ts'
import { Deque } from '../util/deque.ts'
import { type Grants, type PrivateTopics, segmentsOf } from './authorize.ts'
import { type BrokerMessage, type HistoryRead, READ_PAGE } from './broker.ts'
import { formatEventId, parseEventId } from './event-id.ts'
import { matches, type Pattern } from './topic-pattern.ts'
import type { TopicListing } from './wildcard-broker.ts'

/**
 * What happens when a subscriber's queue is full because its client reads slower than events
 * are published:
 * - `'disconnect'` — the subscription ends (its queue is freed at once); the client reconnects
 *   with `Last-Event-ID` and resumes from the history without loss, as long as the history
 *   reaches back far enough (otherwise it receives the {@link RESET_EVENT}).
 * - `'drop-oldest'` — the oldest queued event is discarded to make room: the client stays
 *   connected and silently misses events (counted in `stats().dropped`). For feeds where only
 *   the latest value matters (prices, positions).
 */
export type OverflowPolicy = 'drop-oldest' | 'disconnect'

/**
 * Why a subscriber was sent the {@link RESET_EVENT}:
 * - `'expired'` — its `Last-Event-ID` is older than the history still kept;
 * - `'lost'` — the broker lost its history (new epoch: a Redis restart without persistence, a
 *   flush, or a restarted process with the in-memory broker);
 * - `'invalid'` — its `Last-Event-ID` is not a position this broadcaster issued.
 */
export type ResetReason = 'expired' | 'lost' | 'invalid'

/**
 * The type of the event a subscriber receives when it cannot resume without loss: its data is
 * JSON `{"reason": ResetReason, "topics": string[]}`. Reload the state of those topics (for
 * example refetch the chat log), then carry on: events after it are live. Its id is the
 * current position, so a reconnect after it resumes from there.
 *
 * @example
 * ```ts
 * source.addEventListener('oven-reset', () => reloadEverything())
 * ```
 */
export const RESET_EVENT = 'oven-reset'

/** Decides per subscriber whether an event goes out. `topic` is where it was published. */
export type BroadcastFilter = (event: ServerSentEvent, topic: string) => boolean

/** Counters shared by a broadcaster and its subscriptions. @internal */
export interface MutableStats {
  published: number
  delivered: number
  dropped: number
  disconnected: number
  resets: number
}

/** What a subscription needs from its broadcaster. @internal */
export interface SubscriptionHost {
  readonly stats: MutableStats
  /** Registers with the topics (synchronously), then resolves once they are listened to. */
  join(subscription: Subscription): Promise<void>
  /** Unregisters. */
  leave(subscription: Subscription): void
  /** Reads a page of the broker history (see `Broker.read`), noting the epoch it reports. */
  read(topics: readonly string[], after: number, limit: number): Promise<HistoryRead>
  /** The shared event for a message (one per message per process). */
  decode(message: BrokerMessage): ServerSentEvent
  /** Calls `subscription.wake()` soon, once for all subscriptions woken in the same burst. */
  scheduleWake(subscription: Subscription): void
  /**
   * Drops the client of `stream` once the delivery in progress is over: dropping a client runs
   * its stream's hooks, and no user callback may run inside a loop over the subscribers.
   */
  afterDelivery(stream: ClientDropper): void
  /** The broadcaster's private topic declarations (see `authorize.ts`). */
  readonly privateTopics: PrivateTopics
  /**
   * The topics with history after `after`, the forgotten watermark and the head they were
   * listed at, for a pattern subscription that resumes (see `WildcardBroker.topicsAfter`).
   */
  topicsAfter(after: number): Promise<TopicListing>
}

/** A broadcaster's bounds, one object shared by all its subscriptions. @internal */
export interface SubscriptionLimits {
  readonly capacity: number
  /** The most missed events a resume is sent; past it, the reset event. */
  readonly maxResume: number
  readonly overflow: OverflowPolicy
}

/** @internal */
export interface SubscriptionConfig {
  topics: readonly string[]
  /** Requested patterns with wildcards, matched on every message (see `Fanout.deliver`). */
  patterns: readonly Pattern[]
  /** What the `authorize` hook granted; `undefined`: no hook, or it granted the request. */
  grants: Grants | undefined
  limits: SubscriptionLimits
  filter: BroadcastFilter | undefined
  lastEventId: string | undefined
  /**
   * What ends it: the stream's context (given `ctx`, it listens without making `ctx.signal`;
   * see `onStreamEnd` in stream/context.ts) or a caller's signal.
   */
  ends: StreamEnds | AbortSignal | undefined
}

/** Something the broadcaster handed over while the subscription was still in setup. */
type Held =
  | { kind: 'message'; message: BrokerMessage; event: ServerSentEvent }
  | { kind: 'epoch'; epoch: string }
  | {
      kind: 'trimmed'
      epoch: string
      head: number
      trimmed: ReadonlyMap<string, number>
      gap: CatchUpGap
    }

/** What a broadcaster's catch-up after an interruption covered (see `checkTrimmed`). @internal */
export interface CatchUpGap {
  /** The position it read from: every message up to it had been delivered live. */
  readonly after: number
  /** The forgotten watermark its topic listing saw (`0` when no pattern needed one). */
  readonly forgotten: number
}

const State = { Setup: 0, Live: 1, Closed: 2 } as const
type State = (typeof State)[keyof typeof State]

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined }

/** Registers `listener` for the end; `false` when it has come already (nothing registered). */
function listenForEnd(ends: StreamEnds | AbortSignal, listener: StreamEndListener): boolean {
  if (!(ends instanceof AbortSignal)) return ends[onStreamEnd](listener)
  if (ends.aborted) return false
  ends.addEventListener('abort', listener)
  return true
}

/** The `patterns` of a subscription without any: one array shared by all of them. */
const NO_PATTERNS: readonly never[] = Object.freeze([])

/**
 * A live subscription to one or more topics: content for `EventSourceResponse` and
 * `sendEventStream` (it is async-iterable, read by one stream). Made by
 * `Broadcaster.subscribe`.
 *
 * It yields `ServerSentEvent` instances shared by every subscriber of the process, so each
 * event is encoded once. It ends, unregistering and freeing its queue, when the stream stops
 * reading (`return()`), when `options.signal` aborts, on `close()`, when its broadcaster
 * closes, or on overflow with the `'disconnect'` policy.
 */
export class Subscription
  implements
    AsyncIterable<ServerSentEvent>,
    AsyncIterator<ServerSentEvent>,
    Puller,
    StreamEndListener
{
  /** The patterns with wildcards it covers, parsed. @internal */
  readonly wildcards: readonly Pattern[]
  /**
   * Settles once the subscription is live (the missed events are queued and live events flow)
   * or has ended. Never rejects: a setup failure is raised by the stream's next read.
   */
  readonly ready: Promise<void>

  // An idle subscriber is most of a broadcaster's memory (thousands of open dashboards), so
  // what only some need is made when needed: the held messages and the backlog during setup,
  // the queue with the first event. Measured with heap snapshots of 3 200 idle subscribers.
  /** Its topics: the one topic most subscriptions have as is (no array each), or the list. */
  readonly #topics: string | readonly string[]
  readonly #host: SubscriptionHost
  readonly #limits: SubscriptionLimits
  readonly #filter: BroadcastFilter | undefined
  readonly #grants: Grants | undefined
  /** What it listens to for its end, until it ends: see {@link SubscriptionConfig.ends}. */
  #ends: StreamEnds | AbortSignal | undefined

  #state: State = State.Setup
  #epoch: string | undefined
  /** The position this subscriber has been given everything up to. */
  #position = 0
  #held: Held[] | undefined
  #heldOverflow = false
  /** Missed events from the history, served before the queue. */
  #backlog: Deque<BrokerMessage> | undefined
  #queue: Deque<ServerSentEvent> | undefined
  /** The stream waiting for the next event (see `pullInto`). */
  #reader: Receiver | undefined
  #wakeScheduled = false
  #error: { value: unknown } | undefined
  #iterating = false
  /** The stream reading this subscription, to drop its client on overflow. */
  #stream: ClientDropper | undefined

  /** @internal Use `Broadcaster.subscribe`. */
  constructor(host: SubscriptionHost, config: SubscriptionConfig) {
    this.#host = host
    const { topics } = config
    // An exact-size copy: a list built by `push` keeps room for 16 more.
    this.#topics = topics.length === 1 ? topics[0]! : topics.slice()
    this.wildcards = config.patterns.length === 0 ? NO_PATTERNS : config.patterns
    this.#grants = config.grants
    this.#limits = config.limits
    this.#filter = config.filter
    const { ends } = config
    if (ends !== undefined && !listenForEnd(ends, this)) {
      this.#state = State.Closed
      this.ready = Promise.resolve()
      return
    }
    this.#ends = ends
    this.ready = this.#setup(config.lastEventId)
  }

  /** The topics it covers (without wildcards). */
  get topics(): readonly string[] {
    const topics = this.#topics
    return typeof topics === 'string' ? [topics] : topics
  }

  /** The patterns with wildcards it covers, beyond {@link Subscription.topics}. */
  get patterns(): readonly string[] {
    return this.wildcards.map((pattern) => pattern.source)
  }

  /** How many events wait to be read (queued live events plus missed events). */
  get size(): number {
    return (this.#queue?.size ?? 0) + (this.#backlog?.size ?? 0)
  }

  /** Whether the subscription has ended. */
  get closed(): boolean {
    return this.#state === State.Closed
  }

  /**
   * Ends the subscription: it stops receiving, and the stream reading it finishes once it has
   * sent what was already queued (a stream that stops reading frees the queue at once).
   */
  close(): void {
    this.#close(true)
  }

  // ---- fed by the broadcaster -------------------------------------------------------------

  /** A live message on one of its topics. @internal */
  offer(message: BrokerMessage, event: ServerSentEvent): void {
    if (this.#state === State.Live) this.#accept(message, event)
    else if (this.#state === State.Setup) this.#hold({ kind: 'message', message, event })
  }

  /**
   * Whether a message on the topic of `segments`, matched by the requested `pattern`, may be
   * offered: the pattern reaches it (a private topic needs a pattern naming it explicitly) and
   * a grant covers it. @internal
   */
  admits(pattern: Pattern, segments: readonly string[]): boolean {
    const privateTopics = this.#host.privateTopics
    return (
      privateTopics.reaches(pattern, segments) &&
      (this.#grants === undefined || this.#grants.covers(segments, privateTopics))
    )
  }

  /** The broker's history was replaced (new epoch). @internal */
  epochChanged(epoch: string): void {
    if (this.#state === State.Live) this.#onEpoch(epoch)
    else if (this.#state === State.Setup) this.#hold({ kind: 'epoch', epoch })
  }

  /**
   * After a broker interruption: the history's trim points, to detect lost events. `gap` is
   * where the broadcaster's catch-up started (`after`: everything up to it was delivered live)
   * and the forgotten watermark it saw, which counts for the topics patterns reach. @internal
   */
  checkTrimmed(
    epoch: string,
    head: number,
    trimmed: ReadonlyMap<string, number>,
    gap: CatchUpGap,
  ): void {
    if (this.#state === State.Live) this.#onTrimmed(epoch, head, trimmed, gap)
    else if (this.#state === State.Setup) {
      this.#hold({ kind: 'trimmed', epoch, head, trimmed, gap })
    }
  }

  // ---- setup ------------------------------------------------------------------------------

  async #setup(lastEventId: string | undefined): Promise<void> {
    try {
      await this.#host.join(this)
      if (this.closed) return
      const wanted =
        lastEventId === undefined || lastEventId === '' ? undefined : parseEventId(lastEventId)
      // The epoch, head and trim points first: whether the client can resume is decided
      // without reading any history, however far back it is.
      const read = await this.#host.read(wanted ? this.topics : [], wanted?.seq ?? 0, 0)
      if (this.closed) return
      if (lastEventId === undefined || lastEventId === '') {
        // A new subscriber starts from "now": the broker's head once listening is active.
        this.#epoch = read.epoch
        this.#position = read.head
      } else if (!wanted || (read.epoch === wanted.epoch && wanted.seq > read.head)) {
        this.#reset('invalid', read.epoch, read.head)
      } else if (read.epoch !== wanted.epoch) {
        this.#reset('lost', read.epoch, read.head)
      } else if (this.#trimmedSince(read.trimmed, wanted.seq)) {
        this.#reset('expired', read.epoch, read.head)
      } else {
        this.#epoch = read.epoch
        this.#position = wanted.seq
        await this.#readMissed()
      }
      // Messages held during setup: read them instead when too many arrived to hold.
      while (this.#heldOverflow && this.#state === State.Setup) {
        this.#heldOverflow = false
        this.#held = undefined
        await this.#readMissed()
      }
      if (this.#state !== State.Setup) return
      // Synchronous from here: nothing can be held between this drain and going live.
      const held = this.#held ?? []
      this.#held = undefined
      this.#state = State.Live
      for (const item of held) {
        if (this.#state !== State.Live) break
        if (item.kind === 'message') this.#accept(item.message, item.event)
        else if (item.kind === 'epoch') this.#onEpoch(item.epoch)
        else this.#onTrimmed(item.epoch, item.head, item.trimmed, item.gap)
      }
      this.#serveReader()
    } catch (error) {
      this.#fail(error)
    }
  }

  /**
   * Reads the history after `#position` into the backlog, page by page, up to the head. A client
   * that missed more than `maxResume` events, or whose events the history dropped meanwhile,
   * is sent the reset event instead.
   */
  async #readMissed(): Promise<void> {
    const { topics, forgotten, head: listed } = await this.#resumeTopics()
    if (this.#state !== State.Setup) return
    const backlog = (this.#backlog ??= new Deque())
    for (;;) {
      const read = await this.#host.read(topics, this.#position, READ_PAGE)
      if (this.#state !== State.Setup) return
      if (read.epoch !== this.#epoch) {
        backlog.clear()
        this.#reset('lost', read.epoch, read.head)
        return
      }
      if (this.#trimmedSince(read.trimmed, this.#position) || forgotten > this.#position) {
        backlog.clear()
        this.#reset('expired', read.epoch, read.head)
        return
      }
      // Past the listing's head, a topic first published since is not among `topics`: what
      // follows it comes live (this subscription was listening before the listing was made).
      const through = Math.min(read.through, listed)
      for (const message of read.messages) {
        if (message.seq > this.#position && message.seq <= through) backlog.push(message)
      }
      if (backlog.size > this.#limits.maxResume) {
        backlog.clear()
        this.#reset('expired', read.epoch, read.head)
        return
      }
      this.#position = Math.max(this.#position, through)
      if (through >= Math.min(read.head, listed)) return
    }
  }

  /**
   * What a resume reads: the topics, and for patterns the topics with history since the
   * position that they match and the grants admit, up to the head they were listed at (no
   * bound without patterns). A topic forgotten since then (expired) is not listed, so the
   * forgotten watermark counts as trimmed: never resumed past.
   */
  async #resumeTopics(): Promise<TopicListing> {
    if (this.wildcards.length === 0) {
      return { topics: [...this.topics], forgotten: 0, head: Number.POSITIVE_INFINITY }
    }
    const found = await this.#host.topicsAfter(this.#position)
    const topics = new Set(this.topics)
    for (const topic of found.topics) {
      if (!topics.has(topic) && this.#reaches(topic)) topics.add(topic)
    }
    return { topics: [...topics], forgotten: found.forgotten, head: found.head }
  }

  /** Whether one of its patterns matches `topic`, and may bring it (see `admits`). */
  #reaches(topic: string): boolean {
    const segments = segmentsOf(topic)
    for (const pattern of this.wildcards) {
      if (matches(pattern, segments) && this.admits(pattern, segments)) return true
    }
    return false
  }

  #hold(item: Held): void {
    if (this.#heldOverflow) return
    const held = (this.#held ??= [])
    // Bounded: past this, setup drops what it holds and reads the history again instead.
    if (held.length >= Math.max(this.#limits.capacity, 256)) {
      this.#heldOverflow = true
      this.#held = undefined
      return
    }
    held.push(item)
  }

  /** Whether the history dropped a message after `position` of a topic this subscription has. */
  #trimmedSince(trimmed: ReadonlyMap<string, number>, position: number): boolean {
    for (const topic of this.topics) {
      if ((trimmed.get(topic) ?? 0) > position) return true
    }
    if (this.wildcards.length === 0) return false
    // The topics its patterns reach, among those read: only the ones trimmed past it matter.
    for (const [topic, seq] of trimmed) {
      if (seq > position && this.#reaches(topic)) return true
    }
    return false
  }

  // ---- live -------------------------------------------------------------------------------

  #accept(message: BrokerMessage, event: ServerSentEvent): void {
    // Positions only grow: anything at or before `#position` was already given (or skipped).
    if (message.epoch !== this.#epoch || message.seq <= this.#position) return
    this.#position = message.seq
    if (this.#filter) {
      let pass: boolean
      try {
        pass = this.#passes(event, message.topic)
      } catch (error) {
        this.#fail(error)
        return
      }
      if (!pass) return
    }
    this.#enqueue(event)
  }

  /**
   * The filter's answer. An `async` filter returns a promise, which is truthy: it would let
   * through every event it meant to hide, so it is refused.
   */
  #passes(event: ServerSentEvent, topic: string): boolean {
    const pass: unknown = this.#filter!(event, topic)
    if (isThenable(pass)) {
      throw new SseError(
        'ERR_SSE_INVALID_OPTION',
        'Invalid subscribe option "filter": expected it to return true or false, received a ' +
          'Promise (a filter cannot be async: decide from the event alone).',
      )
    }
    return Boolean(pass)
  }

  #onEpoch(epoch: string): void {
    // Every message of the new epoch is new to a live subscriber: start from its beginning.
    if (epoch !== this.#epoch) this.#reset('lost', epoch, 0)
  }

  #onTrimmed(
    epoch: string,
    head: number,
    trimmed: ReadonlyMap<string, number>,
    gap: CatchUpGap,
  ): void {
    if (epoch !== this.#epoch) return
    // Live, it was offered every message of its topics up to where the catch-up started: only
    // what was dropped after that (or after its own position, if later) is lost to it.
    const since = Math.max(this.#position, gap.after)
    // A topic forgotten in the gap is in no listing: any of them may have matched a pattern.
    const forgotten = this.wildcards.length > 0 && gap.forgotten > since
    if (forgotten || this.#trimmedSince(trimmed, since)) this.#reset('expired', epoch, head)
  }

  #reset(reason: ResetReason, epoch: string, head: number): void {
    this.#epoch = epoch
    this.#position = head
    this.#host.stats.resets++
    this.#enqueue(
      new ServerSentEvent({
        event: RESET_EVENT,
        id: formatEventId(epoch, head),
        data: JSON.stringify({ reason, topics: [...this.topics, ...this.patterns] }),
      }),
    )
  }

  #enqueue(event: ServerSentEvent): void {
    const queue = (this.#queue ??= new Deque())
    const { capacity } = this.#limits
    if (queue.size < capacity) {
      queue.push(event)
      if (!this.#reader) return
      // A waiting stream is woken once per burst, not once per event: it then takes the whole
      // burst without a promise per event, which is most of the cost of a fan-out. A burst
      // that fills half the queue wakes it at once, so bursts never overflow a stream that
      // keeps up.
      if (queue.size * 2 >= capacity) this.#serveReader()
      else if (!this.#wakeScheduled) {
        this.#wakeScheduled = true
        this.#host.scheduleWake(this)
      }
      return
    }
    if (this.#limits.overflow === 'drop-oldest') {
      queue.shift()
      queue.push(event)
      this.#host.stats.dropped++
      if (overflow.hasSubscribers) overflow.publish({ policy: 'drop-oldest', topics: this.topics })
      return
    }
    // 'disconnect': free the queue now and drop the client as soon as this delivery is over,
    // even if its stream is waiting on a socket it stopped reading; it reconnects and resumes
    // from the history.
    this.#host.stats.disconnected++
    if (overflow.hasSubscribers) overflow.publish({ policy: 'disconnect', topics: this.topics })
    this.#close()
    const stream = this.#stream
    if (stream) this.#host.afterDelivery(stream)
  }

  // ---- the reading side -------------------------------------------------------------------

  /** The next item, or `undefined` when none is ready. */
  #take(): ServerSentEvent | undefined {
    const backlog = this.#backlog
    while (backlog !== undefined && backlog.size > 0) {
      const message = backlog.shift()!
      const event = this.#host.decode(message)
      if (this.#filter && !this.#passes(event, message.topic)) continue
      this.#host.stats.delivered++
      return event
    }
    const event = this.#queue?.shift()
    if (event) this.#host.stats.delivered++
    return event
  }

  /** Hands queued events to a waiting stream. @internal */
  wake(): void {
    this.#wakeScheduled = false
    this.#serveReader()
  }

  #serveReader(): void {
    const reader = this.#reader
    if (!reader) return
    let event: ServerSentEvent | undefined
    try {
      event = this.#take()
    } catch (error) {
      this.#fail(error)
      return
    }
    if (event) {
      this.#reader = undefined
      // The stream takes the rest of the burst synchronously, through `pullInto`.
      reader.receive({ done: false, value: event })
    }
  }

  /**
   * The stream's read: the next event now, or `undefined` and the event handed to `receiver`
   * once one arrives (see `pullInto`). A queued event costs no promise, and a waiting stream
   * costs one field: with thousands of subscribers that is most of the per-delivery work.
   * @internal
   */
  [pullInto](receiver: Receiver): IteratorResult<ServerSentEvent> | undefined {
    if (this.#error) {
      const { value } = this.#error
      this.#error = undefined
      throw value
    }
    const event = this.#take()
    if (event) return { done: false, value: event }
    if (this.#state === State.Closed) return DONE
    if (this.#reader) {
      throw new SseError(
        'ERR_SSE_INVALID_CONTENT',
        'Subscription: next() called while a read waits.',
      )
    }
    this.#reader = receiver
    return undefined
  }

  /** The iterator's `next()`, for reading the subscription by hand. @internal */
  next(): Promise<IteratorResult<ServerSentEvent>> {
    return nextByHand(this)
  }

  /** The iterator's `return()`: the reading stream went away. @internal */
  return(): Promise<IteratorResult<ServerSentEvent>> {
    this.#close()
    return Promise.resolve(DONE)
  }

  /** Receives the stream reading it, to drop its client on overflow. @internal */
  [takeClientDropper](stream: ClientDropper): void {
    this.#stream = stream
  }

  [Symbol.asyncIterator](): AsyncIterator<ServerSentEvent> {
    if (this.#iterating) {
      throw new SseError(
        'ERR_SSE_INVALID_CONTENT',
        'Subscription already has a reader: one subscription feeds one stream. Call ' +
          'subscribe() once per client.',
      )
    }
    this.#iterating = true
    // Its own iterator: no iterator object or closures per subscriber.
    return this
  }

  // ---- ending -----------------------------------------------------------------------------

  /**
   * Its stream stopped wanting items, or the caller's signal aborted: it ends at once. (An
   * EventListener object rather than a closure per subscription.) @internal
   */
  handleEvent(): void {
    this.#close()
  }

  #fail(error: unknown): void {
    if (this.#state === State.Closed) return
    const reader = this.#reader
    this.#reader = undefined
    if (reader) reader.receiveError(error)
    else this.#error = { value: error }
    this.#close()
  }

  /** Ends it; `graceful` keeps what is queued for the stream to send before it finishes. */
  #close(graceful = false): void {
    if (this.#state === State.Closed) {
      if (!graceful) this.#free()
      return
    }
    this.#state = State.Closed
    const ends = this.#ends
    this.#ends = undefined
    if (ends instanceof AbortSignal) ends.removeEventListener('abort', this)
    else ends?.[offStreamEnd](this)
    this.#host.leave(this)
    this.#held = undefined
    if (!graceful) this.#free()
    // A waiting stream takes what is queued (a graceful end), or learns that it is over.
    this.#serveReader()
    const reader = this.#reader
    this.#reader = undefined
    reader?.receive(DONE)
  }

  #free(): void {
    this.#backlog = undefined
    this.#queue = undefined
  }
}
