/**
 * The `Broker` contract (broker-contract.ts) run against every broker: a new broker is one
 * factory and one `brokerContract` line here. The Redis and NATS servers are real, on reserved
 * ports, started once for the file; each test uses a prefix (stream) of its own.
 */

import { afterAll, beforeAll } from 'vitest'
import { MemoryBroker } from '../../src/index.ts'
import { NatsBroker } from '../../src/nats.ts'
import { RedisBroker } from '../../src/redis.ts'
import { type NatsServer, startNats } from '../helpers/nats.ts'
import { type RedisServer, reservePort, startRedis } from '../helpers/redis.ts'
import { brokerContract } from './broker-contract.ts'

let redis: RedisServer
let nats: NatsServer
beforeAll(async () => {
  ;[redis, nats] = await Promise.all([startRedis(), startNats()])
}, 30_000)
afterAll(async () => {
  await Promise.all([redis?.close(), nats?.close()])
})

/** A reserved port nothing listens on, for the "no server" test. */
async function nowhere() {
  const { port, release } = await reservePort()
  return { port, release }
}

brokerContract('memory', { shared: false, make: () => new MemoryBroker() })

brokerContract('redis', {
  shared: true,
  make: (prefix) => new RedisBroker({ url: redis.url, prefix }),
  async unreachable(commandTimeout) {
    const { port, release } = await nowhere()
    const broker = new RedisBroker({ url: `redis://127.0.0.1:${port}`, commandTimeout })
    return { broker, release }
  },
})

brokerContract('nats', {
  shared: true,
  make: (prefix) => new NatsBroker({ servers: nats.url, prefix }),
  async unreachable(commandTimeout) {
    const { port, release } = await nowhere()
    const broker = new NatsBroker({ servers: `nats://127.0.0.1:${port}`, commandTimeout })
    return { broker, release }
  },
})
