/**
 * What a broker offers, beyond the {@link Broker} contract, for subscriptions to topic patterns
 * (`orders/*`): a pattern names topics no one can list in advance, so the broadcaster listens
 * to every topic while such a subscription is open and matches each message itself, in a
 * segment trie (`pattern-trie.ts`). The `Broker` interface is unchanged; a broker without these
 * methods serves topic subscriptions only, and `subscribe` refuses a pattern with a clear error.
 *
 * Across instances, "every topic" means every message published anywhere reaches each instance
 * that has a pattern subscriber: the cost per instance grows with the whole publish rate, not
 * with its own subscribers' topics (docs/authorization.md, "Scaling").
 *
 * @module
 */

import type { Broker } from './broker.ts'

/**
 * What {@link WildcardBroker.topicsAfter} answers: one snapshot, taken after the listening it
 * serves is active, so every message after `head` also reaches the sink live.
 */
export interface TopicListing {
  /** The topics with a message after the position asked about, as of `head`. */
  readonly topics: string[]
  /**
   * The forgotten watermark (see the module comment of `broker.ts`): a position before it may
   * have missed a topic that is no longer listed. A broker that bounds its listing and has
   * more topics than it lists answers `head` here, so the reader resets instead of resuming
   * with a gap.
   */
  readonly forgotten: number
  /**
   * The head when the topics were listed. A reader reads the listed topics up to here only: a
   * topic first published after the listing is not in it, and its messages come live.
   */
  readonly head: number
}

/** The optional methods a broker implements to serve pattern subscriptions. */
export interface WildcardBroker {
  /**
   * Starts live delivery of every topic to the sink, on top of the topics listened to one by
   * one; resolves once it is active (the same guarantee as `listen`).
   */
  listenAll(): Promise<void>
  /** Stops what `listenAll` started; topics listened to one by one stay. */
  unlistenAll(): Promise<void>
  /**
   * The topics whose history holds a message after `after`, for a pattern subscription that
   * resumes or a catch-up after an outage (see {@link TopicListing}).
   */
  topicsAfter(after: number): Promise<TopicListing>
}

/** The broker's wildcard methods, when it has all of them. */
export function wildcardOf(broker: Broker): WildcardBroker | undefined {
  const candidate = broker as Broker & Partial<WildcardBroker>
  return typeof candidate.listenAll === 'function' &&
    typeof candidate.unlistenAll === 'function' &&
    typeof candidate.topicsAfter === 'function'
    ? (candidate as Broker & WildcardBroker)
    : undefined
}
