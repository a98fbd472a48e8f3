/**
 * The default broker: everything in this process, no dependencies.
 *
 * @module
 */

import { SseError } from '../errors.ts'
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

interface TopicHistory {
  messages: Deque<BrokerMessage>
  /** The seq of the newest message dropped from `messages` (0: none). */
  trimmed: number
}

/**
 * A broker inside one process: a bounded history per topic and synchronous delivery. The
 * default of {@link Broadcaster}. Use `RedisBroker` from `oven-sse/redis` when several
 * processes serve the same topics.
 *
 * Its epoch is new in every process, so a client that resumes after a server restart is told
 * that the history is gone rather than handed a wrong position.
 *
 * @example
 * ```ts
 * const hub = new Broadcaster({ broker: new MemoryBroker(), history: 500 })
 * ```
 */
export class MemoryBroker implements Broker {
  readonly #epoch = newEpoch()
  readonly #histories = new Map<string, TopicHistory>()
  readonly #listening = new Set<string>()
  #seq = 0
  #sink: BrokerSink | undefined
  #closed = false

  attach(sink: BrokerSink): void {
    this.#sink = sink
  }

  publish(topic: string, payload: string, history: number): Promise<Position> {
    if (this.#closed) {
      return Promise.reject(
        new SseError('ERR_SSE_BROKER', 'MemoryBroker is closed; the event was not published.'),
      )
    }
    const seq = ++this.#seq
    const message: BrokerMessage = { topic, epoch: this.#epoch, seq, payload }
    let entry = this.#histories.get(topic)
    if (!entry) {
      entry = { messages: new Deque(), trimmed: 0 }
      this.#histories.set(topic, entry)
    }
    entry.messages.push(message)
    while (entry.messages.size > history) entry.trimmed = entry.messages.shift()!.seq
    if (this.#listening.has(topic)) this.#sink?.message(message)
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

  read(topics: readonly string[], after: number, limit: number): Promise<HistoryRead> {
    const perTopic = pageShare(limit, topics.length)
    const lists: BrokerMessage[][] = []
    const trimmed = new Map<string, number>()
    for (const topic of topics) {
      const entry = this.#histories.get(topic)
      trimmed.set(topic, entry?.trimmed ?? 0)
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
    this.#listening.clear()
    this.#histories.clear()
    return Promise.resolve()
  }
}
