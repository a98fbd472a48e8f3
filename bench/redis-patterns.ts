/**
 * What a pattern subscription costs an instance on Redis: `npx tsx bench/redis-patterns.ts
 * [--quick]` (needs `redis-server` on the PATH; it starts its own, on a free port).
 *
 * While an instance has a pattern subscriber, its broker holds `PSUBSCRIBE {prefix}:t:*` and
 * receives every message of the prefix, most of them for topics no one there wants. This
 * measures that cost: Redis itself publishes `count` messages on topics the pattern
 * (`orders/*`) does not match (one Lua loop, so the publisher costs this process nothing),
 * then one matching event; the clock stops when the subscriber has it, which also checks that
 * everything before it went through. Printed: CPU time of this process per unrelated message
 * (median of the repetitions, and the best), against the same run with a plain subscriber of
 * `orders/last` only (the instance then receives nothing but that event).
 */

import { parseArgs } from 'node:util'
import { createClient } from 'redis'
import { toEvent, toPayload } from '../src/broadcast/payload.ts'
import { Broadcaster } from '../src/index.ts'
import { RedisBroker } from '../src/redis.ts'
import { startRedis } from '../test/helpers/redis.ts'

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
  },
})
const reps = flags.quick ? 3 : 7
const count = flags.quick ? 10_000 : 50_000

const redis = await startRedis()
const admin = createClient({ url: redis.url })
await admin.connect()

/** One repetition: CPU ns per unrelated message, for a pattern or a plain subscriber. */
async function once(kind: 'pattern' | 'plain'): Promise<number> {
  const prefix = `bench-${Math.random().toString(36).slice(2)}`
  const hub = new Broadcaster({ broker: new RedisBroker({ url: redis.url, prefix }) })
  const publisher = new Broadcaster({ broker: new RedisBroker({ url: redis.url, prefix }) })
  try {
    await publisher.publish('warm-up', 'x')
    const subscription = hub.subscribe(kind === 'pattern' ? ['orders/*'] : ['orders/last'])
    await subscription.ready
    const events = subscription[Symbol.asyncIterator]()
    const payload = toPayload(toEvent('{"price":42,"sku":"abc-123"}', undefined))
    const cpu = process.cpuUsage()
    // As the publish script would: the shared seq, then the message on the topic's channel.
    await admin.sendCommand([
      'EVAL',
      `local epoch = redis.call('GET', KEYS[1])
       for i = 1, ${count} do
         local seq = redis.call('INCR', KEYS[2])
         redis.call('PUBLISH', ARGV[1] .. 'news/' .. i, epoch .. ' ' .. seq .. ' ' .. ARGV[2])
       end`,
      '2',
      `{${prefix}}:epoch`,
      `{${prefix}}:seq`,
      `{${prefix}}:t:`,
      payload,
    ])
    await publisher.publish('orders/last', 'end')
    const next = await events.next()
    const used = process.cpuUsage(cpu)
    if (next.value?.data !== 'end') throw new Error(`expected "end", got ${String(next.value)}`)
    return ((used.user + used.system) * 1000) / count
  } finally {
    await hub.close()
    await publisher.close()
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!

try {
  await once('pattern') // warm-up
  const results: Record<'pattern' | 'plain', number[]> = { pattern: [], plain: [] }
  for (let rep = 0; rep < reps; rep++) {
    for (const kind of ['pattern', 'plain'] as const) results[kind].push(await once(kind))
  }
  console.log(`${count} unrelated messages per repetition, ${reps} repetitions`)
  console.log('subscriber | CPU ns per unrelated message (median) | best')
  for (const kind of ['pattern', 'plain'] as const) {
    const values = results[kind]
    console.log(
      `${kind.padEnd(10)} | ${median(values).toFixed(0).padStart(6)} | ${Math.min(...values).toFixed(0)}`,
    )
  }
} finally {
  await admin.close()
  await redis.close()
}
