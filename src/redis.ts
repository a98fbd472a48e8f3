/**
 * Oven's Redis broker: share topics, history and event ids between several server processes.
 * Needs the optional peer dependency `redis` (node-redis v5 or v6).
 *
 * @example
 * ```ts
 * import { Broadcaster } from 'oven-sse'
 * import { RedisBroker } from 'oven-sse/redis'
 *
 * const hub = new Broadcaster({ broker: new RedisBroker({ url: 'redis://localhost:6379' }) })
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
