/**
 * A {@link PresenceStore} on Redis: every instance sharing the Redis (and the prefix) sees the
 * members of every other.
 *
 * Layout (all keys share the hash tag `{prefix}`, so they live in one Redis Cluster slot):
 * - `{oven}:presence:due` — a sorted set: every joined connection, scored by when it expires
 *   (Redis's own clock, so instances with skewed clocks agree).
 * - `{oven}:presence:conn` — a hash: per connection, its topic and member (JSON).
 * - `{oven}:presence:m:<topic>` — a hash: per member of the topic, its number of connections.
 * - `{oven}:presence:i:<topic>` — a hash: per member, the info of its latest join.
 *
 * Each operation is one Lua script, so a connection's expiry, its member's count and the leave
 * it makes change together: of two instances sweeping at once, exactly one removes an entry
 * and announces its leave. The per-topic hashes vanish with their last member, and the other
 * two keys hold only live connections, so nothing outlives the connections it describes by more
 * than one ttl.
 *
 * @module
 */

import { checkOptionNames, SseError } from '../errors.ts'
import { type RedisCommandClient, RedisConnection, redisScript } from '../util/redis-connection.ts'
import type { PresenceLeave, PresenceList, PresenceMember, PresenceStore } from './presence.ts'

/** Options of {@link RedisPresenceStore}. */
export interface RedisPresenceStoreOptions {
  /** A Redis URL (`redis://host:6379`); the store creates and owns its client. */
  url?: string | undefined
  /** A node-redis client you made (`createClient()`); you close it. */
  client?: RedisCommandClient | undefined
  /**
   * Namespace of the keys, used as the Redis Cluster hash tag. Instances that share presence
   * use the same prefix (it may be the `RedisBroker`'s).
   * @defaultValue `'oven'`
   */
  prefix?: string | undefined
  /**
   * A command that gets no answer in this many ms fails: a join rejects, a heartbeat reports
   * to the `Presence`'s `onError` and tries again on the next one.
   * @defaultValue `5000`
   */
  commandTimeout?: number | undefined
}

const OPTIONS = ['url', 'client', 'prefix', 'commandTimeout']

// KEYS: the `due` sorted set, the `conn` hash. ARGV[1]: the per-topic key prefix, ARGV[2]: the
// operation, then its arguments.
const SCRIPT = redisScript(`
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local perTopic = ARGV[1]
local op = ARGV[2]

-- Removes a connection; returns {topic, member} when it was the member's last one there.
local function remove(conn)
  redis.call('ZREM', KEYS[1], conn)
  local record = redis.call('HGET', KEYS[2], conn)
  if not record then return nil end
  redis.call('HDEL', KEYS[2], conn)
  local entry = cjson.decode(record)
  local topic, member = entry[1], entry[2]
  if redis.call('HINCRBY', perTopic .. 'm:' .. topic, member, -1) > 0 then return nil end
  redis.call('HDEL', perTopic .. 'm:' .. topic, member)
  redis.call('HDEL', perTopic .. 'i:' .. topic, member)
  return {topic, member}
end

if op == 'join' then
  local conn, topic, member, info, ttl = ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
  if redis.call('HEXISTS', KEYS[2], conn) == 1 then return 0 end
  redis.call('ZADD', KEYS[1], now + ttl, conn)
  redis.call('HSET', KEYS[2], conn, cjson.encode({topic, member}))
  if info ~= '' then redis.call('HSET', perTopic .. 'i:' .. topic, member, info) end
  if redis.call('HINCRBY', perTopic .. 'm:' .. topic, member, 1) == 1 then return 1 end
  return 0
elseif op == 'leave' then
  return remove(ARGV[3]) or {}
elseif op == 'renew' then
  local ttl = tonumber(ARGV[3])
  local lost = {}
  for i = 4, #ARGV do
    if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
      redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
    else
      lost[#lost + 1] = ARGV[i]
    end
  end
  return lost
elseif op == 'sweep' then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
  local out = {#due}
  for _, conn in ipairs(due) do
    local left = remove(conn)
    if left then
      out[#out + 1] = left[1]
      out[#out + 1] = left[2]
    end
  end
  return out
elseif op == 'members' then
  local counts, infos = perTopic .. 'm:' .. ARGV[3], perTopic .. 'i:' .. ARGV[3]
  local limit = tonumber(ARGV[4])
  local out = {redis.call('HLEN', counts)}
  local cursor, listed = '0', 0
  repeat
    local page = redis.call('HSCAN', counts, cursor, 'COUNT', 100)
    cursor = page[1]
    for i = 1, #page[2], 2 do
      if listed < limit then
        listed = listed + 1
        out[#out + 1] = page[2][i]
        out[#out + 1] = page[2][i + 1]
        out[#out + 1] = redis.call('HGET', infos, page[2][i]) or ''
      end
    end
  until cursor == '0' or listed >= limit
  return out
end
return redis.error_reply('unknown presence operation ' .. tostring(op))
`)

function storeError(message: string, cause?: unknown): SseError {
  const detail = cause instanceof Error ? `: ${cause.message}` : ''
  return new SseError('ERR_SSE_BROKER', `${message}${detail}`, { cause })
}

/**
 * Presence shared by every instance on one Redis: pass it as the `store` of a `Presence`.
 * Needs Redis 5 or later and the `redis` package (an optional peer dependency).
 *
 * @example
 * ```ts
 * import { Presence } from 'oven-sse'
 * import { RedisPresenceStore } from 'oven-sse/redis'
 *
 * const presence = new Presence({ store: new RedisPresenceStore({ url: process.env.REDIS_URL }) })
 * ```
 */
export class RedisPresenceStore implements PresenceStore {
  readonly #redis: RedisConnection
  readonly #keys: [string, string]
  readonly #perTopic: string
  #closed = false

  /**
   * @param options - `url` or `client`, and `prefix`, `commandTimeout`.
   * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` for a bad option.
   */
  constructor(options: RedisPresenceStoreOptions) {
    checkOptionNames('RedisPresenceStore', options, OPTIONS)
    this.#redis = new RedisConnection(options, { prefix: 'oven', commandTimeout: 5000 })
    this.#perTopic = `${this.#redis.keyPrefix}presence:`
    this.#keys = [`${this.#perTopic}due`, `${this.#perTopic}conn`]
  }

  async join(
    topic: string,
    connection: string,
    member: string,
    info: string | undefined,
    ttl: number,
  ): Promise<boolean> {
    const first = await this.#run('join', [connection, topic, member, info ?? '', String(ttl)])
    return Number(first) === 1
  }

  async leave(connection: string): Promise<PresenceLeave | undefined> {
    const [topic, member] = (await this.#run('leave', [connection])) as string[]
    return topic === undefined || member === undefined ? undefined : { topic, member }
  }

  async renew(connections: readonly string[], ttl: number): Promise<string[]> {
    if (connections.length === 0) return []
    return ((await this.#run('renew', [String(ttl), ...connections])) as unknown[]).map(String)
  }

  async sweep(limit: number): Promise<{ removed: number; leaves: PresenceLeave[] }> {
    const [removed, ...pairs] = (await this.#run('sweep', [String(limit)])) as unknown[]
    const leaves: PresenceLeave[] = []
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      leaves.push({ topic: String(pairs[i]), member: String(pairs[i + 1]) })
    }
    return { removed: Number(removed), leaves }
  }

  async members(topic: string, limit: number): Promise<PresenceList> {
    const [total, ...triples] = (await this.#run('members', [topic, String(limit)])) as unknown[]
    // HSCAN may return a field twice while Redis resizes the hash.
    const seen = new Map<string, PresenceMember>()
    for (let i = 0; i + 2 < triples.length; i += 3) {
      const member = String(triples[i])
      const connections = Number(triples[i + 1])
      const info = String(triples[i + 2])
      seen.set(
        member,
        info === '' ? { member, connections } : { member, connections, info: JSON.parse(info) },
      )
    }
    return { total: Number(total), members: [...seen.values()] }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#redis.close()
  }

  /** Runs one operation of the script; settles within `commandTimeout`. */
  async #run(op: string, args: string[]): Promise<unknown> {
    if (this.#closed) throw storeError('RedisPresenceStore is closed')
    try {
      return await this.#redis.eval(SCRIPT, this.#keys, [this.#perTopic, op, ...args])
    } catch (cause) {
      throw storeError(`Redis presence ${op} failed`, cause)
    }
  }
}
