/**
 * What a connection limiter costs per stream: connects per second through `sendEventStream`
 * with no limit, a `ConnectionLimiter` (one process) and a `RedisConnectionLimiter` (one Redis
 * round trip to acquire, one command to release), on one node:http server in this process and
 * a redis-server of its own on loopback.
 *
 * Each connect is a whole short stream: head, one event, end — so the limiter's acquire and
 * release are both in every request. `CONCURRENCY` clients on keep-alive sockets; the modes run
 * interleaved, `REPS` times each, and every response is checked (status 200, the event's data).
 *
 *   npx tsx bench/limit-cost.ts              # 3 × 4 000 connects per mode
 *   npx tsx bench/limit-cost.ts --quick      # 1 × 500
 */

import { Agent, createServer, get } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ConnectionLimiter, type Limiter } from '../src/index.ts'
import { sendEventStream } from '../src/node.ts'
import { RedisConnectionLimiter } from '../src/redis.ts'
import { startRedis } from '../test/helpers/redis.ts'

const quick = process.argv.includes('--quick')
const REPS = quick ? 1 : 3
const CONNECTS = quick ? 500 : 4000
const CONCURRENCY = 16

const redis = await startRedis()
const modes: Record<string, Limiter<unknown> | undefined> = {
  none: undefined,
  ConnectionLimiter: new ConnectionLimiter({ max: 1_000_000 }),
  RedisConnectionLimiter: new RedisConnectionLimiter({
    url: redis.url,
    prefix: 'bench',
    max: 1_000_000,
    maxPerKey: 1_000_000,
    key: () => 'bench-user',
  }),
}
let limit: Limiter<unknown> | undefined
const server = createServer((req, res) => {
  void sendEventStream(req, res, ['x'], { limit })
})
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const { port } = server.address() as AddressInfo
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY })

function connect(): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => {
        if (res.statusCode === 200 && body.includes('data: x')) resolve()
        else reject(new Error(`unexpected answer ${res.statusCode}: ${JSON.stringify(body)}`))
      })
    })
    request.setTimeout(10_000, () => request.destroy(new Error('no answer in 10 s')))
    request.on('error', reject)
  })
}

/** `CONNECTS` connects, `CONCURRENCY` at a time; connects per second and median latency. */
async function measure(): Promise<{ perSecond: number; p50: number }> {
  const latencies: number[] = []
  let next = 0
  const startedAt = performance.now()
  const worker = async () => {
    while (next < CONNECTS) {
      next++
      const begun = performance.now()
      await connect()
      latencies.push(performance.now() - begun)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  const seconds = (performance.now() - startedAt) / 1000
  latencies.sort((a, b) => a - b)
  return { perSecond: CONNECTS / seconds, p50: latencies[Math.floor(latencies.length / 2)] ?? 0 }
}

const results: Record<string, Array<{ perSecond: number; p50: number }>> = {}
try {
  // Warm up every path (JIT, scripts loaded into Redis, sockets open).
  for (const [, mode] of Object.entries(modes)) {
    limit = mode
    for (let i = 0; i < 200; i++) await connect()
  }
  for (let rep = 0; rep < REPS; rep++) {
    for (const [name, mode] of Object.entries(modes)) {
      limit = mode
      ;(results[name] ??= []).push(await measure())
    }
  }
} finally {
  agent.destroy()
  server.close()
  await (modes.RedisConnectionLimiter as RedisConnectionLimiter).close()
  await redis.close()
}

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const table = Object.fromEntries(
  Object.entries(results).map(([name, runs]) => [
    name,
    {
      connectsPerSecond: Math.round(median(runs.map((run) => run.perSecond))),
      p50LatencyMs: Math.round(median(runs.map((run) => run.p50)) * 100) / 100,
    },
  ]),
)
const none = table.none!
const perConnectUs = (name: string) =>
  Math.round((1e6 / table[name]!.connectsPerSecond - 1e6 / none.connectsPerSecond) * 10) / 10
console.log(
  JSON.stringify(
    {
      connects: CONNECTS,
      reps: REPS,
      concurrency: CONCURRENCY,
      modes: table,
      addedMicrosecondsPerConnect: {
        ConnectionLimiter: perConnectUs('ConnectionLimiter'),
        RedisConnectionLimiter: perConnectUs('RedisConnectionLimiter'),
      },
    },
    null,
    2,
  ),
)
