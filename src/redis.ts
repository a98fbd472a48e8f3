/**
 * Oven on Redis, for several server processes: the broker shares topics, history and event ids;
 * the connection limiter counts open streams across every instance. Needs the optional peer
 * dependency `redis` (node-redis v5 or v6).
 *
 * @example
 * ```ts
 * import { Broadcaster } from 'oven-sse'
 * import { RedisBroker, RedisConnectionLimiter } from 'oven-sse/redis'
 *
 * const hub = new Broadcaster({ broker: new RedisBroker({ url: 'redis://localhost:6379' }) })
 * const limit = new RedisConnectionLimiter({ url: 'redis://localhost:6379', max: 50_000 })
 * ```
 *
 * @module
 */

export {
  RedisBroker,
  type RedisBrokerOptions,
  type RedisClientLike,
} from './broadcast/redis-broker.ts'
export {
  RedisPresenceStore,
  type RedisPresenceStoreOptions,
} from './cluster/redis-presence-store.ts'
export {
  type RedisCommandClient,
  RedisConnectionLimiter,
  type RedisConnectionLimitOptions,
} from './limits/redis-limit.ts'
