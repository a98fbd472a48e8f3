/**
 * The contract between a {@link Broadcaster} and the broker behind it: the in-memory one
 * ({@link MemoryBroker}), Redis (`oven-sse/redis`) or NATS JetStream (`oven-sse/nats`).
 * Implement it to put Oven on another transport (Postgres, ...); the contract suite in
 * `test/broadcast/broker-contract.ts` checks an implementation.
 *
 * What a broker guarantees:
 * - `publish` assigns the next `seq` of one sequence shared by every topic, stores the message
 *   in the topic's bounded history and delivers it to every instance listening to the topic —
 *   atomically: a message is either in the history and on its way to listeners, or nowhere
 *   (and `publish` rejects).
 * - Live messages reach the sink in `seq` order. When delivery is interrupted (a lost
 *   connection) the broker calls `sink.interrupted()` at once, and `sink.resync()` once
 *   listening is active again; the broadcaster holds live messages in between and reads what
 *   it missed from the history. (Without the first call, a live message arriving just before
 *   `resync()` would move the reader's position past the gap it has to read.)
 * - Once `listen(topic)` has resolved, every message published to the topic afterwards reaches
 *   the sink (or a `resync()` follows), so "listen, then read the history" leaves no gap.
 * - History is bounded by count (`history`) and, when `publish` is given a `ttl`, by age: a
 *   message older than `ttl` ms may leave the history, and a topic whose whole history has
 *   expired is forgotten (nothing of it is kept). Whatever leaves is reported as trimmed, never
 *   silently: `read` reports for a topic it knows nothing about (never published, or forgotten)
 *   a `trimmed` at least the last `seq` of every topic it has forgotten (the *forgotten
 *   watermark*), and a topic published again after being forgotten starts with that `trimmed`.
 *   A reader positioned before a message that expired is therefore told so (a reset), whichever
 *   topic it was on. Only positions older than `ttl` are affected: the watermark is the `seq` of
 *   a message published at least `ttl` ago.
 *
 * @module
 */

import type { Position } from './event-id.ts'

/** One published message as a broker carries it. */
export interface BrokerMessage {
  /** The topic it was published to. */
  readonly topic: string
  /** The history it belongs to. */
  readonly epoch: string
  /** Its position in the broker's shared sequence. */
  readonly seq: number
  /** The event's fields, as made by the broadcaster (opaque to the broker). */
  readonly payload: string
}

/** What {@link Broker.read} returns: one page of a consistent snapshot of the history. */
export interface HistoryRead {
  /** The current epoch. Created by the read when the broker had none (after a flush). */
  readonly epoch: string
  /** The highest `seq` assigned in this epoch so far (`0` when none). */
  readonly head: number
  /**
   * The requested topics' messages with `after < seq <= through`, in `seq` order: every one of
   * them, so the next page starts after `through`.
   */
  readonly messages: readonly BrokerMessage[]
  /**
   * How far this page reaches: `head` when it holds everything after `after`. Smaller when the
   * page was cut at the read's `limit`.
   */
  readonly through: number
  /**
   * Per requested topic, the `seq` of the newest message the history has dropped (`0` when it
   * has dropped none): a reader positioned before that has missed something for good.
   */
  readonly trimmed: ReadonlyMap<string, number>
}

/** Where a broker delivers live messages: the broadcaster that attached to it. */
export interface BrokerSink {
  /** A live message for a topic this instance listens to. */
  message(message: BrokerMessage): void
  /** Live delivery was interrupted: hold live messages until the next `resync()`. */
  interrupted(): void
  /** Live delivery was interrupted and is active again: messages may have been missed. */
  resync(): void
}

/** A message bus with a bounded history per topic. See the module comment for guarantees. */
export interface Broker {
  /** Connects the broker to its broadcaster. Called once, by the `Broadcaster` constructor. */
  attach(sink: BrokerSink): void
  /**
   * Publishes `payload` to `topic`, keeping the newest `history` messages of the topic, each
   * for at most `ttl` ms (`0` or omitted: no age bound; see the module comment for what an
   * expired message leaves behind). Rejects with `ERR_SSE_BROKER` when the message cannot be
   * stored and delivered.
   */
  publish(topic: string, payload: string, history: number, ttl?: number): Promise<Position>
  /** Starts live delivery of `topic` to the sink; resolves once it is active. */
  listen(topic: string): Promise<void>
  /** Stops live delivery of `topic`. */
  unlisten(topic: string): Promise<void>
  /**
   * Reads one page of the history of `topics` after `after`, with the current epoch, head and
   * trim points. The page holds at most about `limit` messages (at least one per topic that
   * has any, so every read makes progress) and is a complete prefix: see
   * {@link HistoryRead.through}. With `limit` 0 it holds none: only the epoch, head and trim
   * points are read, which is cheap whatever the history holds.
   */
  read(topics: readonly string[], after: number, limit: number): Promise<HistoryRead>
  /** Releases connections and timers. */
  close(): Promise<void>
}

/**
 * Messages per history read, for a resume or a catch-up: a far-back one is read in pages, so no
 * single read holds the broker (Redis serves every client from one thread) for long. Measured
 * on Redis 7: about 6 µs per entry read.
 *
 * @internal
 */
export const READ_PAGE = 1000

/**
 * Cuts per-topic reads into one page: `lists` holds, per topic, its first messages after the
 * read's position (at most `perTopic` each, ascending). A topic that filled its share may have
 * more, so the page reaches only to the lowest last `seq` among those: below that, every
 * message of every topic is in hand. Shared by the brokers so they page alike.
 *
 * @internal
 */
export function cutPage(
  lists: ReadonlyArray<readonly BrokerMessage[]>,
  perTopic: number,
  after: number,
  head: number,
): { messages: BrokerMessage[]; through: number } {
  // Nothing read (limit 0): the page covers nothing beyond `after`.
  if (perTopic === 0) return { messages: [], through: Math.min(after, head) }
  let through = head
  for (const list of lists) {
    if (list.length >= perTopic && list.length > 0) {
      through = Math.min(through, list[list.length - 1]!.seq)
    }
  }
  const messages: BrokerMessage[] = []
  for (const list of lists) {
    for (const message of list) {
      if (message.seq > through) break
      messages.push(message)
    }
  }
  if (lists.length > 1) messages.sort((a, b) => a.seq - b.seq)
  return { messages, through }
}

/** How many messages per topic a page of `limit` reads for `topics` topics. @internal */
export function pageShare(limit: number, topics: number): number {
  return limit <= 0 ? 0 : Math.max(1, Math.ceil(limit / Math.max(topics, 1)))
}
