/**
 * A live feed interrupted and restored: the broadcaster must deliver, in order and once, the
 * events published during the outage — also when a live message slips in between the broker's
 * re-subscription and its `resync()` (a race that loaded machines hit with Redis).
 */

import { expect, test } from 'vitest'
import {
  Broadcaster,
  type Broker,
  type BrokerMessage,
  type BrokerSink,
  MemoryBroker,
  type Subscription,
} from '../../src/index.ts'

/** A MemoryBroker whose live delivery the test can cut and restore, as a lost connection does. */
class FlakyBroker implements Broker {
  readonly inner = new MemoryBroker()
  sink!: BrokerSink
  delivering = true
  attach(sink: BrokerSink): void {
    this.sink = sink
    this.inner.attach({
      message: (message: BrokerMessage) => {
        if (this.delivering) sink.message(message)
      },
      interrupted: () => sink.interrupted(),
      resync: () => sink.resync(),
    })
  }
  publish: Broker['publish'] = (...args) => this.inner.publish(...args)
  listen: Broker['listen'] = (...args) => this.inner.listen(...args)
  unlisten: Broker['unlisten'] = (...args) => this.inner.unlisten(...args)
  read: Broker['read'] = (...args) => this.inner.read(...args)
  close: Broker['close'] = () => this.inner.close()
}

async function take(subscription: Subscription, count: number): Promise<string[]> {
  const out: string[] = []
  const iterator = subscription[Symbol.asyncIterator]()
  while (out.length < count) {
    const result = await Promise.race([
      iterator.next(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`only ${out.length} of ${count}: ${out}`)), 2000),
      ),
    ])
    if (result.done) break
    out.push(String(result.value.data))
  }
  return out
}

test('events published during an outage arrive once, in order, though a live one came first', async () => {
  const broker = new FlakyBroker()
  const hub = new Broadcaster({ broker })
  try {
    const subscription = hub.subscribe('feed')
    await subscription.ready
    await hub.publish('feed', 'before')
    // The connection drops: the broker says so at once, and live delivery stops.
    broker.sink.interrupted()
    broker.delivering = false
    await hub.publish('feed', 'during 1')
    await hub.publish('feed', 'during 2')
    // Re-subscribed: a live message arrives before the broker gets to call resync().
    broker.delivering = true
    await hub.publish('feed', 'after')
    broker.sink.resync()
    expect(await take(subscription, 4)).toEqual(['before', 'during 1', 'during 2', 'after'])
  } finally {
    await hub.close()
  }
})
