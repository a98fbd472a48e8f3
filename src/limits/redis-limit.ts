/**
 * Connection limits across instances: `max` and `maxPerKey` counted in Redis, shared by every
 * server process that uses the same Redis and `prefix`.
 *
 * Layout (all keys share the hash tag `{prefix}`, so they live in one Redis Cluster slot and one
 * script may touch them together):
 * - `{prefix}:all` — a sorted set of every open stream's slot; `{prefix}:k:<key>` — the slots of
 *   one key. A member is `<instance>:<n>` (the instance's random id, then a counter); its score
 *   is when the slot expires, in ms on Redis's own clock (`TIME`), so the instances' clocks
 *   never matter.
 *
 * - **Acquire** is one script: drop the expired members of both sets, refuse if either is full,
 *   else add the member to both with score `now + lease`. Atomic, so concurrent connects on any
 *   number of instances never admit more than the limit.
 * - **Lease.** Every `lease / 3` each instance renews the scores of the slots it holds (one
 *   script, `ZADD` without conditions: a slot that expired during an outage comes back, so the
 *   count again matches the streams really open). An instance killed without a goodbye stops
 *   renewing: its slots expire, and stop counting, at most one `lease` after its last renewal.
 * - **Release** is `ZREM` from both sets. One that fails (Redis unreachable) leaves the member to
 *   expire within a lease; it is no longer renewed.
 * - Each set key expires (`PEXPIRE lease`) with its newest member, so keys of users who left
 *   vanish without a sweep.
 *
 * Every command settles within `commandTimeout`; one refused or unanswered is an *unreachable*
 * Redis, answered as `whenUnreachable` says.
 *
 * @module
 */

import { randomUUID } from 'node:crypto'
import { limitReject } from '../diagnostics/channels.ts'
import { invalidOption, SseError } from '../errors.ts'
import { allowsShortDurations, checkDelay, unref } from '../util/delay.ts'
import {
  checkPrefix,
  type RedisCommandClient,
  RedisConnection,
  redisScript,
} from '../util/redis-connection.ts'
import type { ConnectionLimitOptions } from './connection-limit.ts'
import {
  type Admission,
  checkLimits,
  type KeyFunction,
  LIMIT_OPTIONS,
  type Limiter,
  type ReleaseSlot,
  readKey,
  retryAfterHeader,
} from './limiter.ts'

export type { RedisCommandClient }

/** Options of {@link RedisConnectionLimiter}: those of `ConnectionLimiter`, and Redis's. */
export interface RedisConnectionLimitOptions<Req = unknown> extends ConnectionLimitOptions<Req> {
  /** A Redis URL (`redis://host:6379`); the limiter creates and owns its client. */
  url?: string | undefined
  /**
   * A node-redis client you made (`createClient()`), connected or not; the limiter connects it
   * if needed. You close it.
   */
  client?: RedisCommandClient | undefined
  /**
   * Namespace of the limiter's keys, used as the Redis Cluster hash tag. Instances that share
   * a limit use the same prefix (and the same `max`, `maxPerKey`); two limits (two routes
   * limited apart) need two prefixes.
   * @defaultValue `'oven-limit'`
   */
  prefix?: string | undefined
  /**
   * How long (ms) a slot outlives the last renewal by its instance; renewed every third of it.
   * An instance that dies without closing its streams (SIGKILL, a lost host) holds its slots at
   * most this long. At least 5000 and at least twice `commandTimeout` (tests go lower with
   * `shortDurations()`).
   * @defaultValue `30000`
   */
  lease?: number | undefined
  /**
   * A command that gets no answer in this many ms fails, counted from the moment it is sent:
   * the longest a connecting client waits on Redis before its answer. The first acquire may
   * also wait this long for the first connection.
   * @defaultValue `2000`
   */
  commandTimeout?: number | undefined
  /**
   * What a stream gets while Redis cannot be asked (refused, not connected, or no answer within
   * `commandTimeout`):
   * - `'reject'` — `503` with `Retry-After`, like a full limit: never more streams than you
   *   allowed, at the price of refusing new streams during an outage (open ones go on).
   * - `'admit'` — a slot, counted by this instance alone: its next renewal adds it to Redis, so
   *   the counts are right again soon after Redis is back; during the outage nothing is capped.
   * @defaultValue `'reject'`
   */
  whenUnreachable?: 'reject' | 'admit' | undefined
  /**
   * Called with each failure to reach Redis (an acquire, a renewal, a release), as an
   * `SseError` with code `ERR_SSE_BROKER` and the cause.
   * @defaultValue logs the first failure of each outage with `console.error`
   */
  onError?: ((error: SseError) => void) | undefined
}

/** The options of {@link RedisConnectionLimiter}. */
const OPTIONS = [
  ...LIMIT_OPTIONS,
  'url',
  'client',
  'prefix',
  'lease',
  'commandTimeout',
  'whenUnreachable',
  'onError',
]

const LEASE = 30_000
const COMMAND_TIMEOUT = 2000
/** Members one `ZADD` of the renewal script takes: Lua's `unpack` has a stack limit. */
const ZADD_BATCH = 500

// Redis's clock, in ms: every score is on it, whichever instance wrote it.
const CLOCK = `
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`

// KEYS: the sets the slot joins (all, then the key's). ARGV: member, lease, then each set's
// limit (-1: none). Returns 0 when admitted, else the index of the full set.
const ACQUIRE_SCRIPT = `${CLOCK}
local lease = tonumber(ARGV[2])
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  local most = tonumber(ARGV[i + 2])
  if most >= 0 and redis.call('ZCARD', KEYS[i]) >= most then return i end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], lease)
end
return 0
`

// KEYS: sets. ARGV: lease, then per set its member count and members. Re-adds members that
// expired meanwhile (an outage longer than the lease): they are streams still open.
const RENEW_SCRIPT = `${CLOCK}
local lease = tonumber(ARGV[1])
local at = 2
for i = 1, #KEYS do
  local n = tonumber(ARGV[at])
  at = at + 1
  local batch = {}
  for j = 1, n do
    batch[#batch + 1] = now + lease
    batch[#batch + 1] = ARGV[at]
    at = at + 1
    if #batch >= ${ZADD_BATCH * 2} or j == n then
      redis.call('ZADD', KEYS[i], unpack(batch))
      batch = {}
    end
  end
  redis.call('PEXPIRE', KEYS[i], lease)
end
return 0
`

// KEYS[1]: a set. The members not expired.
const COUNT_SCRIPT = `${CLOCK}
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
`

const SCRIPTS = {
  acquire: redisScript(ACQUIRE_SCRIPT),
  renew: redisScript(RENEW_SCRIPT),
  count: redisScript(COUNT_SCRIPT),
}

/** A slot this instance holds: the sets its member is in. */
type HeldSlot = readonly string[]

function unreachable(what: string, cause: unknown): SseError {
  const detail = cause instanceof Error ? `: ${cause.message}` : ''
  return new SseError('ERR_SSE_BROKER', `RedisConnectionLimiter: ${what}${detail}`, { cause })
}

/**
 * A connection limiter for several server processes behind a load balancer: `max` and
 * `maxPerKey` hold across every instance that shares the Redis and the `prefix`. Pass it as the
 * `limit` option like a `ConnectionLimiter`; past a limit the client gets the same `503` with
 * `Retry-After`, and the content function is not called.
 *
 * - `acquire` answers with a promise (one Redis round trip, atomic across instances), so use
 *   it with `sendEventStream`, Express, Koa, Fastify, `openEventSourceResponse`, Hono, h3 or
 *   Elysia. `new EventSourceResponse(...)` cannot wait for it and throws, naming
 *   `openEventSourceResponse`.
 * - A slot is given back when its stream ends; one whose instance died without ending it
 *   (SIGKILL) stops counting within `lease` (default 30 s).
 * - While Redis is unreachable, new streams are refused with `503` (or admitted with
 *   `whenUnreachable: 'admit'`), each within `commandTimeout`; streams already open go on.
 * - Call `close()` on shutdown, after your streams have ended (`closeAll`): it stops the
 *   renewals and closes the client it made.
 *
 * @example
 * ```ts
 * import type { IncomingMessage } from 'node:http'
 * import { sendEventStream } from 'oven-sse/node'
 * import { RedisConnectionLimiter } from 'oven-sse/redis'
 *
 * const limit = new RedisConnectionLimiter<IncomingMessage>({
 *   url: process.env.REDIS_URL,
 *   max: 50_000, // all instances together
 *   maxPerKey: 6, // per user, on whichever instances their streams land
 *   key: (req) => userIdFrom(req),
 * })
 * app.get('/events', (req, res) => sendEventStream(req, res, source(), { limit }))
 * ```
 */
export class RedisConnectionLimiter<Req = unknown> implements Limiter<Req> {
  /** The most streams open at once on all instances; `Infinity` when unlimited. */
  readonly max: number
  /** The most streams open at once per key on all instances; `Infinity` when unlimited. */
  readonly maxPerKey: number
  /** The suggested retry delay in ms; see `ConnectionLimitOptions.retryAfter`. */
  readonly retryAfter: number
  /** The `Retry-After` header value: whole seconds, rounded up. */
  readonly retryAfterHeader: string
  /** See {@link RedisConnectionLimitOptions.lease}. */
  readonly lease: number
  /** This instance's id: the first part of its slots' members in Redis. */
  readonly instance = randomUUID()
  readonly #key: KeyFunction<Req> | undefined
  readonly #redis: RedisConnection
  readonly #all: string
  readonly #admitWhenUnreachable: boolean
  readonly #onError: (error: SseError) => void
  /** The slots this instance holds, by member: renewed every third of the lease. */
  readonly #held = new Map<string, HeldSlot>()
  /** The number in the newest slot's member. */
  #lastSlot = 0
  #renewal: ReturnType<typeof setInterval> | undefined
  #renewing = false
  /** A failure was reported and nothing has succeeded since: the default log stays quiet. */
  #failing = false
  #closed = false

  /**
   * @param options - see {@link RedisConnectionLimitOptions}.
   * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` for a bad option, `maxPerKey` without
   *   `key`, or neither `url` nor `client`.
   */
  constructor(options: RedisConnectionLimitOptions<Req>) {
    const limits = checkLimits('RedisConnectionLimiter', options, OPTIONS)
    this.max = limits.max
    this.maxPerKey = limits.maxPerKey
    this.retryAfter = limits.retryAfter
    this.retryAfterHeader = retryAfterHeader(limits.retryAfter)
    this.#key = limits.key
    const short = allowsShortDurations(options)
    const {
      url,
      client,
      prefix = 'oven-limit',
      whenUnreachable = 'reject',
      onError = this.#logFirstFailure,
    } = options
    checkPrefix(prefix)
    const commandTimeout = checkDelay('commandTimeout', options.commandTimeout ?? COMMAND_TIMEOUT, {
      min: 1,
    })
    this.lease = checkDelay('lease', options.lease ?? LEASE, { min: 5000 }, short)
    if (this.lease < 2 * commandTimeout) {
      invalidOption(
        'lease',
        `at least twice commandTimeout (${commandTimeout} ms), so that a renewal that waits the whole commandTimeout still lands within the lease`,
        this.lease,
      )
    }
    if (whenUnreachable !== 'reject' && whenUnreachable !== 'admit') {
      invalidOption('whenUnreachable', '"reject" or "admit"', whenUnreachable)
    }
    this.#admitWhenUnreachable = whenUnreachable === 'admit'
    if (typeof onError !== 'function') invalidOption('onError', 'a function', onError)
    this.#onError = onError
    // Last: the client it makes connects at once, and no check below may fail after that.
    this.#redis = new RedisConnection(
      { url, client, prefix, commandTimeout },
      { prefix, commandTimeout },
    )
    this.#all = `${this.#redis.keyPrefix}all`
  }

  /** How many slots this instance holds now (its open streams under this limiter). */
  get size(): number {
    return this.#held.size
  }

  /**
   * How many streams hold a slot now on all instances: in all, or under `key`.
   *
   * @throws {@link SseError} `ERR_SSE_BROKER` when Redis cannot be asked.
   */
  async count(key?: string): Promise<number> {
    const set = key === undefined ? this.#all : this.#keySet(key)
    try {
      await this.#redis.waitFirstConnection()
      return Number(await this.#redis.eval(SCRIPTS.count, [set], []))
    } catch (cause) {
      throw unreachable('could not count the open streams', cause)
    }
  }

  /**
   * Takes a slot for the stream of `request` on Redis: resolves with its release function, or
   * `undefined` when a limit is reached (or Redis is unreachable, unless `whenUnreachable` is
   * `'admit'`). Never rejects because of Redis; settles within `commandTimeout` (twice that for
   * the first call, which may wait for the first connection).
   *
   * @throws (at once) what `key` throws, or {@link SseError} when it returns something other
   *   than a string or `undefined`.
   */
  acquire(request: Req): Promise<Admission> {
    const key = readKey('RedisConnectionLimiter', this.#key, request)
    return this.#acquire(request, key)
  }

  /**
   * Stops renewing, gives back the slots still held (best effort), and closes the client the
   * limiter made. Streams that end later give nothing back; acquire refuses (or admits
   * uncounted, with `whenUnreachable: 'admit'`). Call it after your streams have ended.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#stopRenewal()
    const held = [...this.#held]
    this.#held.clear()
    if (held.length > 0 && this.#redis.client.isReady) {
      await this.#forget(held).catch(() => {})
    }
    await this.#redis.close()
  }

  async #acquire(request: Req, key: string | undefined): Promise<Admission> {
    const sets = key === undefined ? [this.#all] : [this.#all, this.#keySet(key)]
    const member = `${this.instance}:${++this.#lastSlot}`
    if (this.#closed) return this.#answerWithoutRedis(member, sets, undefined)
    let refused: unknown
    try {
      await this.#redis.waitFirstConnection()
      refused = await this.#redis.eval(SCRIPTS.acquire, sets, [
        member,
        String(this.lease),
        limitArg(this.max),
        ...(key === undefined ? [] : [limitArg(this.maxPerKey)]),
      ])
    } catch (cause) {
      // An acquire sent but unanswered may still run: take its member back, in order after it
      // on the same connection (if that fails too, the member expires within a lease).
      this.#forget([[member, sets]]).catch(() => {})
      return this.#answerWithoutRedis(member, sets, cause)
    }
    this.#failing = false
    if (this.#closed) {
      // Closed while Redis answered: nothing renews the slot any more, so it goes back now.
      if (refused === 0) this.#forget([[member, sets]]).catch(() => {})
      return this.#answerWithoutRedis(member, sets, undefined)
    }
    if (refused !== 0) {
      if (limitReject.hasSubscribers) {
        const limit = refused === 1 ? 'max' : 'maxPerKey'
        limitReject.publish({ limit, key: limit === 'max' ? undefined : key, request })
      }
      return undefined
    }
    return this.#hold(member, sets)
  }

  #answerWithoutRedis(member: string, sets: HeldSlot, cause: unknown): Admission {
    if (cause !== undefined) this.#report(unreachable('could not take a slot', cause))
    if (!this.#admitWhenUnreachable) return undefined
    // Held and renewed like any slot: the first renewal that reaches Redis counts it.
    return this.#closed ? () => {} : this.#hold(member, sets)
  }

  /** Records a slot this instance now holds; returns its release. */
  #hold(member: string, sets: HeldSlot): ReleaseSlot {
    this.#held.set(member, sets)
    if (this.#renewal === undefined) {
      this.#renewal = setInterval(this.#renew, Math.ceil(this.lease / 3))
      unref(this.#renewal)
    }
    return () => {
      // Once: a slot already given back (or dropped by close()) is not held any more.
      if (!this.#held.delete(member)) return
      if (this.#held.size === 0) this.#stopRenewal()
      this.#forget([[member, sets]]).catch((cause: unknown) => {
        this.#report(unreachable('could not give a slot back (it expires within the lease)', cause))
      })
    }
  }

  #stopRenewal(): void {
    clearInterval(this.#renewal)
    this.#renewal = undefined
  }

  /** Removes members from their sets: one `ZREM` per set. */
  async #forget(slots: Iterable<readonly [string, HeldSlot]>): Promise<void> {
    const bySet = groupBySet(slots)
    await Promise.all(
      [...bySet].map(([set, members]) => this.#redis.send(['ZREM', set, ...members])),
    )
  }

  readonly #renew = (): void => {
    // One renewal at a time: a slow Redis must not pile them up.
    if (this.#renewing || this.#held.size === 0) return
    this.#renewing = true
    const bySet = groupBySet(this.#held)
    const args = [String(this.lease)]
    for (const members of bySet.values()) args.push(String(members.length), ...members)
    this.#redis.eval(SCRIPTS.renew, [...bySet.keys()], args).then(
      () => {
        this.#renewing = false
        this.#failing = false
      },
      (cause: unknown) => {
        this.#renewing = false
        this.#report(unreachable('could not renew the slots of this instance', cause))
      },
    )
  }

  #keySet(key: string): string {
    return `${this.#redis.keyPrefix}k:${key}`
  }

  #report(error: SseError): void {
    try {
      this.#onError(error)
    } catch {
      // A failing error handler must not turn a refused stream into a crash.
    }
  }

  readonly #logFirstFailure = (error: SseError): void => {
    if (this.#failing) return
    this.#failing = true
    console.error('[oven-sse] RedisConnectionLimiter cannot reach Redis:', error)
  }
}

/** A limit as the acquire script reads it: `-1` for none. */
function limitArg(limit: number): string {
  return limit === Number.POSITIVE_INFINITY ? '-1' : String(limit)
}

/** The members of `slots` by the sets they are in. */
function groupBySet(slots: Iterable<readonly [string, HeldSlot]>): Map<string, string[]> {
  const bySet = new Map<string, string[]>()
  for (const [member, sets] of slots) {
    for (const set of sets) {
      const members = bySet.get(set)
      if (members) members.push(member)
      else bySet.set(set, [member])
    }
  }
  return bySet
}
