/**
 * The live feed: how a {@link Broadcaster} turns the broker's stream of live messages into
 * deliveries, through interruptions and catch-ups.
 *
 * States, and the one place each moves:
 *
 * ```
 *            interrupted()                         resync()
 *   live ──────────────────▶ interrupted ─────────────────────▶ catching-up
 *    ▲                                                          │   ▲  │ read failed:
 *    └────────── the read and everything held are delivered ────┘   └──┘ retry (backoff)
 * ```
 *
 * - `live`: each message is delivered as it arrives.
 * - `interrupted`: the broker lost its connection. Live messages are held (bounded), because
 *   one arriving before the catch-up read would move the position past the gap.
 * - `catching-up`: the history after the last delivered position is read, page by page, and
 *   delivered; then what was held; then the feed is live again. A failed read is retried until
 *   it succeeds or the feed is closed.
 *
 * Invariants:
 * - Every interruption ends: `resync()` always leads back to `live` (or to `close()`), whether
 *   or not any topic is listened to.
 * - Nothing held is lost or reordered: messages leave in `seq` order, each once. When more
 *   arrive than can be held, the held ones are dropped and read again from the history.
 * - Delivery never nests. A message that arrives while another is being delivered (published
 *   by a callback that delivery ran: a filter, a stream's `onClose`) waits in the queue and is
 *   delivered after it, to everyone.
 *
 * @internal
 * @module
 */

import { brokerState } from '../diagnostics/channels.ts'
import { unref } from '../util/delay.ts'
import { Deque } from '../util/deque.ts'
import type { BrokerMessage, BrokerSink, HistoryRead } from './broker.ts'
import type { CatchUpGap } from './subscription.ts'
import type { TopicListing } from './wildcard-broker.ts'

/** A state of the {@link LiveFeed}; see the module comment. */
export type FeedState = 'live' | 'interrupted' | 'catching-up'

/** What the feed needs from its broadcaster. */
export interface FeedHost {
  /**
   * What a catch-up from `after` reads: the topics listened to now and, while patterns are
   * subscribed, the topics with history since `after` that they match, with the listing's
   * forgotten watermark and head (see `TopicListing`). Without patterns: `forgotten` 0, `head`
   * unbounded.
   */
  catchUpTopics(after: number): Promise<TopicListing>
  /** One page of the broker's history (see `Broker.read`), for a catch-up. */
  readCatchUp(topics: readonly string[], after: number): Promise<HistoryRead>
  /** Hands a message to the subscribers of its topic. */
  deliver(message: BrokerMessage): void
  /** The broker's history was replaced: tells every subscriber. */
  epochChanged(epoch: string): void
  /** After an interruption: tells every subscriber what the history has dropped. */
  checkTrimmed(read: HistoryRead, gap: CatchUpGap): void
  /** Reports an error that belongs to no caller. */
  report(error: unknown): void
}

// Live messages held while not live; past this they are dropped and read again instead.
const MAX_HELD = 10_000
const MAX_RETRY_DELAY = 5000

/**
 * The broadcaster's live feed; see the module comment. It is the broker's {@link BrokerSink}.
 *
 * @internal
 */
export class LiveFeed implements BrokerSink {
  readonly #host: FeedHost
  /** The broadcaster, as diagnostics messages name it. */
  readonly #owner: object
  #state: FeedState = 'live'
  /** The history the positions below belong to. */
  #epoch: string | undefined
  /** Everything up to this position was delivered (or skipped). */
  #position = 0
  /** Messages received and not yet delivered, in arrival (= seq) order. */
  readonly #queue = new Deque<BrokerMessage>()
  /** More arrived than could be held: drop the held ones and read them again. */
  #overflowed = false
  #delivering = false
  /** `interrupted()` was called and no `resync()` has followed yet. */
  #awaitingResync = false
  /** A catch-up's read loop is running (possibly waiting to retry). */
  #catchingUp: Promise<void> | undefined
  #again = false
  #retry: ReturnType<typeof setTimeout> | undefined
  #retryNow: (() => void) | undefined
  #failures = 0
  /** Reads waiting for a catch-up to finish. */
  #waiting: Array<() => void> = []
  #closed = false

  constructor(host: FeedHost, owner: object) {
    this.#host = host
    this.#owner = owner
    if (brokerState.hasSubscribers) {
      brokerState.publish({ broadcaster: owner, state: 'live', previous: undefined })
    }
  }

  /** The one place the state changes; observers hear of each change. */
  #moveTo(state: FeedState): void {
    const previous = this.#state
    if (state === previous) return
    this.#state = state
    if (brokerState.hasSubscribers) {
      brokerState.publish({ broadcaster: this.#owner, state, previous })
    }
  }

  /** Notes the epoch a subscriber's read saw; a different one means the history was replaced. */
  sawEpoch(epoch: string): void {
    if (this.#epoch === undefined) this.#epoch = epoch
    else if (epoch !== this.#epoch) this.resync()
  }

  /** Resolves once no catch-up is running: its snapshot may predate a new subscriber. */
  whenCaughtUp(): Promise<void> {
    if (this.#state !== 'catching-up') return Promise.resolve()
    return new Promise((resolve) => this.#waiting.push(resolve))
  }

  // ---- the broker's calls -------------------------------------------------------------------

  /** A live message from the broker. */
  message(message: BrokerMessage): void {
    if (this.#state === 'live') {
      this.#queue.push(message)
      this.#drain()
    } else if (this.#queue.size < MAX_HELD) {
      this.#queue.push(message)
    } else {
      this.#overflowed = true
    }
  }

  /** Live delivery stopped: hold messages until the catch-up. */
  interrupted(): void {
    this.#awaitingResync = true
    if (this.#state === 'live') this.#moveTo('interrupted')
  }

  /** Live delivery may have missed messages: read them from the history. */
  resync(): void {
    if (this.#closed) return
    this.#awaitingResync = false
    this.#moveTo('catching-up')
    if (this.#catchingUp) {
      this.#again = true
      // Waiting to retry after a failure, and the broker says it is back: retry now.
      this.#retryNow?.()
      return
    }
    this.#catchingUp = this.#catchUp().finally(() => {
      this.#catchingUp = undefined
    })
  }

  /** Stops: no more deliveries, no more retries; waiting reads go on. */
  close(): void {
    if (!this.#closed && brokerState.hasSubscribers) {
      brokerState.publish({ broadcaster: this.#owner, state: 'closed', previous: this.#state })
    }
    this.#closed = true
    this.#queue.clear()
    this.#retryNow?.()
    this.#release()
  }

  // ---- delivery -----------------------------------------------------------------------------

  /** Delivers queued messages while live; a nested call only queues (see the invariants). */
  #drain(): void {
    if (this.#delivering) return
    this.#delivering = true
    try {
      while (this.#state === 'live' && this.#queue.size > 0) this.#accept(this.#queue.shift()!)
    } finally {
      this.#delivering = false
    }
  }

  #accept(message: BrokerMessage): void {
    if (message.epoch !== this.#epoch) {
      if (this.#epoch !== undefined) {
        // The broker's history was replaced under us (a flush): catch up from the new one,
        // which holds this message too.
        this.resync()
        return
      }
      this.#epoch = message.epoch
    }
    if (message.seq <= this.#position) return
    this.#position = message.seq
    this.#host.deliver(message)
  }

  // ---- catching up --------------------------------------------------------------------------

  async #catchUp(): Promise<void> {
    while (!this.#closed) {
      this.#again = false
      try {
        await this.#readGap()
      } catch (error) {
        if (this.#closed) break
        // The broker is still unreachable: try again shortly, or as soon as it reports that it
        // is back. Live messages are held meanwhile (bounded).
        this.#host.report(error)
        await this.#backoff()
        continue
      }
      if (this.#closed) break
      if (this.#overflowed) {
        // More arrived than could be held: read them from the history instead.
        this.#overflowed = false
        this.#queue.clear()
        continue
      }
      this.#failures = 0
      if (this.#again) continue
      if (this.#awaitingResync) {
        // Interrupted again while reading: hold until the broker says it is back.
        this.#moveTo('interrupted')
        break
      }
      // What was held goes out, then live ones; delivery may ask for another catch-up.
      this.#moveTo('live')
      this.#drain()
      if (this.#state === 'live') break
    }
    this.#release()
  }

  /**
   * Reads and delivers the history after the last delivered position, page by page, up to the
   * head of the topic listing (a topic first published after it is not listed: its messages are
   * among those held, since listening was active before the listing was made).
   */
  async #readGap(): Promise<void> {
    let after = this.#position
    let listing = await this.#host.catchUpTopics(after)
    if (this.#closed) return
    let read = await this.#host.readCatchUp(listing.topics, after)
    if (this.#closed) return
    if (this.#epoch !== undefined && read.epoch !== this.#epoch) {
      // A new history: all of it is new to this process.
      if (after !== 0) {
        after = 0
        listing = await this.#host.catchUpTopics(0)
        if (this.#closed) return
        read = await this.#host.readCatchUp(listing.topics, 0)
        if (this.#closed) return
      }
      this.#epoch = read.epoch
      this.#position = 0
      this.#host.epochChanged(read.epoch)
    }
    this.#epoch = read.epoch
    this.#host.checkTrimmed(read, { after, forgotten: listing.forgotten })
    let end: number
    for (;;) {
      end = Math.min(read.head, listing.head)
      const through = Math.min(read.through, end)
      for (const message of read.messages) {
        if (message.seq > through) break
        this.#accept(message)
      }
      if (through >= end) break
      if (through > this.#position) this.#position = through
      read = await this.#host.readCatchUp(listing.topics, this.#position)
      if (this.#closed) return
      if (read.epoch !== this.#epoch) {
        this.#again = true
        return
      }
    }
    if (end > this.#position) this.#position = end
  }

  #backoff(): Promise<void> {
    const delay = Math.min(100 * 2 ** this.#failures++, MAX_RETRY_DELAY)
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(this.#retry)
        this.#retry = undefined
        this.#retryNow = undefined
        resolve()
      }
      this.#retryNow = done
      this.#retry = setTimeout(done, delay)
      unref(this.#retry)
    })
  }

  #release(): void {
    for (const resolve of this.#waiting.splice(0)) resolve()
  }
}
