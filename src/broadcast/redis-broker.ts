/**
 * A Redis broker: several server processes share topics, history and ids.
 *
 * Layout (all keys share the hash tag `{prefix}`, so they live in one Redis Cluster slot):
 * - `{oven}:epoch` — the history's epoch: a random name, created when missing. A Redis restart
 *   without persistence or a flush removes it, so a new epoch starts and clients holding old
 *   ids are told to reset instead of resuming at a meaningless position.
 * - `{oven}:seq` — the sequence shared by every topic (`INCR`).
 * - `{oven}:h:<topic>` — the topic's history: a Stream whose entry ids are `<seq>-0` (fields
 *   `p` payload, `e` expiry time), trimmed to the newest `history` entries and to those not
 *   expired; the key itself expires (PEXPIRE) a second after its newest entry.
 * - `{oven}:trim` — a hash: per topic, the seq of the newest entry trimmed away, so a reader
 *   knows whether its position still has full coverage.
 * - `{oven}:topics` — a sorted set: the topics with a time bound, scored by when their whole
 *   history expires; `{oven}:last` — a hash: per such topic, its newest seq.
 * - `{oven}:forgotten` — the watermark: the highest newest seq of any forgotten topic.
 * - `{oven}:newest` — a sorted set: every topic with a message, scored by its newest seq, for
 *   pattern subscriptions (`topicsAfter`: the topics with history since a position).
 * - channel `{oven}:t:<topic>` — live messages, `<epoch> <seq> <payload>`.
 *
 * Publishing is one Lua script (epoch, INCR, XADD with trim, PUBLISH): atomic, so any snapshot
 * of the history holds every message up to the head, and live delivery follows the same order.
 *
 * Expiry (the `ttl` of `Broker.publish`). The scripts forget a topic whose whole history has
 * expired (its score in `topics` is past): its stream, `trim` and `last` fields and its members
 * of `topics` and `newest` go, and `forgotten` rises to its newest seq. The publish script (and
 * the listing of `topicsAfter`) also forgets up to 100 other expired topics, so the sets, the
 * hashes and the streams stay bounded by the topics published within the ttl. A topic not in `topics` (never published, or forgotten) reads as trimmed up
 * to `forgotten`, and one published again starts trimmed there: a resume from before anything
 * that expired is a reset, never a silent gap. Redis's own expiry of a stream key is only a
 * backstop for topics no script touches again; it fires a second after the scripts would forget
 * the topic, so a missing stream always belongs to a topic whose score is past, which the next
 * script to look at it forgets (raising the watermark) before answering. Bookkeeping keys never
 * expire: they are bounded by the eviction instead, and losing `forgotten` alone would turn
 * resets into gaps.
 *
 * Pattern subscriptions (`WildcardBroker`). While the broadcaster has one, the listening
 * connection also holds `PSUBSCRIBE {oven}:t:*`, so it receives every message of the prefix; a
 * topic also listened to by name then arrives twice, both copies together in seq order, and
 * the second is dropped (see `#onMessage`). node-redis subscribes the pattern again on a
 * reconnect, before 'ready', like the channels. `topicsAfter` lists `newest` from a position:
 * the one index a resume through a pattern needs, bounded like the others (`newest` holds the
 * topics `trim` holds, and loses them when they are forgotten).
 *
 * @module
 */

import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { createClient } from 'redis'
import { checkOptionNames, describe, invalidOption, SseError } from '../errors.ts'
import { setDeadline } from '../util/deadline.ts'
import { checkDelay } from '../util/delay.ts'
import { checkPrefix } from '../util/redis-connection.ts'
import {
  type Broker,
  type BrokerMessage,
  type BrokerSink,
  cutPage,
  type HistoryRead,
  pageShare,
} from './broker.ts'
import { newEpoch, type Position } from './event-id.ts'
import type { TopicListing, WildcardBroker } from './wildcard-broker.ts'

/**
 * The node-redis client methods the broker uses: a client from `createClient()` of the
 * `redis` package (v5 or v6) fits.
 */
export interface RedisClientLike {
  readonly isOpen: boolean
  readonly isReady: boolean
  connect(): Promise<unknown>
  duplicate(): RedisClientLike
  sendCommand(args: string[], options?: { abortSignal?: AbortSignal }): Promise<unknown>
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<void>
  unsubscribe(channel: string, listener: (message: string, channel: string) => void): Promise<void>
  pSubscribe(pattern: string, listener: (message: string, channel: string) => void): Promise<void>
  pUnsubscribe(pattern: string, listener: (message: string, channel: string) => void): Promise<void>
  // biome-ignore lint/suspicious/noExplicitAny: node-redis types event listeners with any[]
  on(event: string, listener: (...args: any[]) => void): unknown
  // biome-ignore lint/suspicious/noExplicitAny: as above
  off(event: string, listener: (...args: any[]) => void): unknown
  close(): Promise<void>
  destroy(): void
}

/** Options of {@link RedisBroker}. */
export interface RedisBrokerOptions {
  /** A Redis URL (`redis://host:6379`); the broker creates and owns its clients. */
  url?: string | undefined
  /**
   * A node-redis client you made (`createClient()`); the broker duplicates it for listening
   * and connects it if needed. You close it; the broker closes only its duplicate.
   */
  client?: RedisClientLike | undefined
  /**
   * Namespace of the keys and channels, used as the Redis Cluster hash tag. Processes that
   * share topics use the same prefix.
   * @defaultValue `'oven'`
   */
  prefix?: string | undefined
  /**
   * A command that gets no answer in this many ms fails (publish rejects), counted from the
   * moment it is sent, whether Redis is unreachable or connected but not answering. The first
   * publish or read of a broker may also wait this long for the first connection.
   * @defaultValue `5000`
   */
  commandTimeout?: number | undefined
}

/** Expired topics one script forgets besides its own: a backlog drains over a few calls. */
const EVICT_PER_CALL = 100
/** Expired entries of one topic one script drops from its history. */
const EXPIRE_PER_CALL = 100
/**
 * How much longer than its history lasts a stream key lives. The scripts forget a topic at its
 * expiry; Redis deleting the key by itself is the backstop for a topic no script touches again,
 * and it must come after, so a key gone always means a topic the scripts see as expired.
 */
const KEY_SLACK = 1000
/**
 * The most topics one `topicsAfter` lists: a resume so far back that more topics have changed
 * since is a reset (the listing says so through its watermark), not one huge reply.
 */
const MAX_LISTED = 10_000

// The bookkeeping keys, the first seven KEYS of every script: epoch, seq, trim, topics, last,
// forgotten, newest. Shared by the scripts: the clock, and forgetting a topic whose history
// expired.
const KEEPING_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local forgotten = tonumber(redis.call('GET', KEYS[6]) or '0')
local function forget(name, key)
  local last = tonumber(redis.call('HGET', KEYS[5], name) or '0')
  if last > forgotten then
    forgotten = last
    redis.call('SET', KEYS[6], last)
  end
  redis.call('HDEL', KEYS[5], name)
  redis.call('HDEL', KEYS[3], name)
  redis.call('ZREM', KEYS[4], name)
  redis.call('ZREM', KEYS[7], name)
  redis.call('DEL', key)
end
-- Forgets the topic if its whole history has expired; returns whether it is still known.
local function known(name, key)
  local score = redis.call('ZSCORE', KEYS[4], name)
  if score and tonumber(score) <= now then
    forget(name, key)
    return false
  end
  return score ~= false and score ~= nil
end
-- Drops the topic's expired entries from the front (a bounded number); they count as trimmed.
local function expire(name, key)
  local first = redis.call('XRANGE', key, '-', '+', 'COUNT', ${EXPIRE_PER_CALL})
  local dropped = 0
  local newest
  for _, entry in ipairs(first) do
    local expires = entry[2][4]
    if not expires or tonumber(expires) > now then break end
    dropped = dropped + 1
    newest = entry[1]
  end
  if dropped == 0 then return end
  local seq = tonumber(string.match(newest, '^(%d+)'))
  if seq > tonumber(redis.call('HGET', KEYS[3], name) or '0') then
    redis.call('HSET', KEYS[3], name, seq)
  end
  local len = redis.call('XLEN', key)
  if dropped >= len then
    redis.call('DEL', key)
  else
    redis.call('XTRIM', key, 'MAXLEN', len - dropped)
  end
end
`

// KEYS: the seven above, history. ARGV: candidate epoch, topic, history size, payload, channel,
// ttl (0: none), the prefix of history keys.
const PUBLISH_SCRIPT = `${KEEPING_SCRIPT}
local seq = redis.call('INCR', KEYS[2])
local topic = ARGV[2]
local keep = tonumber(ARGV[3])
local ttl = tonumber(ARGV[6])
if known(topic, KEYS[8]) then
  expire(topic, KEYS[8])
elseif forgotten > tonumber(redis.call('HGET', KEYS[3], topic) or '0') then
  -- New, or published again after being forgotten: see the watermark in broker.ts.
  redis.call('HSET', KEYS[3], topic, forgotten)
end
local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, ${EVICT_PER_CALL})
for _, name in ipairs(stale) do forget(name, ARGV[7] .. name) end
local len = redis.call('XLEN', KEYS[8])
if len > 0 and len >= keep then
  local old = redis.call('XRANGE', KEYS[8], '-', '+', 'COUNT', len - keep + 1)
  redis.call('HSET', KEYS[3], topic, string.match(old[#old][1], '^(%d+)'))
  if keep > 0 then
    redis.call('XTRIM', KEYS[8], 'MAXLEN', keep - 1)
  else
    redis.call('DEL', KEYS[8])
  end
end
if keep > 0 then
  if ttl > 0 then
    redis.call('XADD', KEYS[8], seq .. '-0', 'p', ARGV[4], 'e', now + ttl)
  else
    redis.call('XADD', KEYS[8], seq .. '-0', 'p', ARGV[4])
  end
else
  redis.call('HSET', KEYS[3], topic, seq)
end
if ttl > 0 then
  redis.call('ZADD', KEYS[4], now + ttl, topic)
  redis.call('HSET', KEYS[5], topic, seq)
  if keep > 0 then redis.call('PEXPIRE', KEYS[8], ttl + ${KEY_SLACK}) end
else
  redis.call('ZREM', KEYS[4], topic)
  redis.call('HDEL', KEYS[5], topic)
  if keep > 0 then redis.call('PERSIST', KEYS[8]) end
end
redis.call('ZADD', KEYS[7], seq, topic)
redis.call('PUBLISH', ARGV[5], epoch .. ' ' .. seq .. ' ' .. ARGV[4])
return {epoch, seq}
`

// KEYS: the seven above, then one history key per topic. ARGV: candidate epoch, after, the most
// entries to read per topic (0: none), then the topics (hash fields of trim). Bounded: one
// page, so a resume far back never blocks Redis for long (see `Broker.read`).
const READ_SCRIPT = `${KEEPING_SCRIPT}
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local from = (tonumber(ARGV[2]) + 1) .. '-0'
local count = tonumber(ARGV[3])
local trimmed = {}
local entries = {}
for i = 8, #KEYS do
  local name = ARGV[i - 4]
  local alive = known(name, KEYS[i])
  if alive then expire(name, KEYS[i]) end
  local trim = tonumber(redis.call('HGET', KEYS[3], name) or '0')
  -- Never published, or forgotten: whatever it had is older than the watermark.
  if not alive and forgotten > trim then trim = forgotten end
  trimmed[i - 7] = trim
  if count > 0 then
    entries[i - 7] = redis.call('XRANGE', KEYS[i], from, '+', 'COUNT', count)
  else
    entries[i - 7] = {}
  end
end
return {epoch, head, trimmed, entries}
`

// KEYS: the seven above. ARGV: candidate epoch, after, the prefix of history keys. Forgets
// expired topics first (as a publish does), so the watermark covers those it leaves out; a
// topic still listed that has expired is forgotten by the read that follows (a reset).
const LIST_SCRIPT = `${KEEPING_SCRIPT}
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, ${EVICT_PER_CALL})
for _, name in ipairs(stale) do forget(name, ARGV[3] .. name) end
local listed = redis.call('ZRANGEBYSCORE', KEYS[7], '(' .. ARGV[2], '+inf', 'LIMIT', 0, ${MAX_LISTED + 1})
if #listed > ${MAX_LISTED} then return {head, head, {}} end
return {head, forgotten, listed}
`

/** A command given up before it was written to Redis: it certainly did not run. */
class Unsent extends Error {}

/** How often a read is sent again while Redis answers `LOADING` (see `RedisBroker.#send`). */
const LOADING_RETRY = 50

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex')
const PUBLISH_SHA = sha1(PUBLISH_SCRIPT)
const READ_SHA = sha1(READ_SCRIPT)
const LIST_SHA = sha1(LIST_SCRIPT)

/** The options of {@link RedisBroker}. */
const OPTIONS = ['url', 'client', 'prefix', 'commandTimeout']

function brokerError(message: string, cause?: unknown): SseError {
  const detail = cause instanceof Error ? `: ${cause.message}` : ''
  return new SseError('ERR_SSE_BROKER', `${message}${detail}`, { cause })
}

/**
 * A {@link Broker} on Redis, for several server processes behind a load balancer: an event
 * published on any process reaches subscribers on every process, and a client that reconnects
 * to another process with `Last-Event-ID` resumes from the history kept in Redis Streams.
 *
 * - `publish` rejects with `ERR_SSE_BROKER` while Redis is unreachable: never a silent loss,
 *   and never held for a reconnect. A publish issued in the instant its connection dies, before
 *   node-redis has noticed, is refused as soon as it does ("not published"), not parked until
 *   Redis is back. Whatever happens, a publish settles within `commandTimeout` of being sent.
 * - Subscribers stay connected through an outage; when Redis is back the broker re-listens and
 *   every process catches up from the history. If Redis lost its data meanwhile (no
 *   persistence), subscribers receive the reset event, then everything published since.
 * - Serves subscriptions to topic patterns (`orders/*`): while an instance has one, it
 *   receives every message of the prefix (`PSUBSCRIBE`) and matches it itself; a client that
 *   resumes through a pattern, on any instance, gets the missed events of the matching topics
 *   (docs/authorization.md).
 * - Needs Redis 5 or later and the `redis` package (an optional peer dependency). Use
 *   `maxmemory-policy noeviction` (or a `volatile-*` policy): evicted keys would cut the
 *   history short.
 *
 * @example
 * ```ts
 * import { Broadcaster } from 'oven-sse'
 * import { RedisBroker } from 'oven-sse/redis'
 *
 * const hub = new Broadcaster({ broker: new RedisBroker({ url: process.env.REDIS_URL }) })
 * ```
 */
export class RedisBroker implements Broker, WildcardBroker {
  readonly #client: RedisClientLike
  readonly #listener: RedisClientLike
  readonly #ownsClient: boolean
  readonly #keyPrefix: string
  /** The bookkeeping keys every script takes first (see `KEEPING_SCRIPT`). */
  readonly #keeping: readonly string[]
  readonly #channelPrefix: string
  /** `PSUBSCRIBE` pattern of every channel of the prefix (glob characters escaped). */
  readonly #channelPattern: string
  readonly #timeout: number
  readonly #connected: Promise<void>
  readonly #listened = new Set<string>()
  /** Publishes not answered yet: given up (if still unwritten) when the connection is lost. */
  readonly #publishing = new Set<AbortController>()
  #sink: BrokerSink | undefined
  #lastError: unknown
  /** The last live message handed to the sink: a copy of it (see `#onMessage`) is dropped. */
  #lastEpoch = ''
  #lastSeq = 0
  #listenerReadyOnce = false
  #closed = false

  /**
   * @param options - `url` or `client`, and `prefix`, `commandTimeout`.
   * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` when neither `url` nor `client` is given.
   */
  constructor(options: RedisBrokerOptions) {
    checkOptionNames('RedisBroker', options, OPTIONS)
    const { url, client, prefix = 'oven', commandTimeout = 5000 } = options
    checkPrefix(prefix)
    checkDelay('commandTimeout', commandTimeout, { min: 1 })
    if (client !== undefined) {
      if (typeof client !== 'object' || client === null || typeof client.duplicate !== 'function') {
        invalidOption('client', 'a node-redis client (createClient())', client)
      }
      this.#client = client
      this.#ownsClient = false
    } else if (typeof url === 'string' && url !== '') {
      this.#client = createClient({ url }) as unknown as RedisClientLike
      this.#ownsClient = true
    } else {
      invalidOption('url', 'a Redis URL, or a client option', url)
    }
    this.#keyPrefix = `{${prefix}}:`
    this.#keeping = ['epoch', 'seq', 'trim', 'topics', 'last', 'forgotten', 'newest'].map((name) =>
      this.#key(name),
    )
    this.#channelPrefix = `{${prefix}}:t:`
    this.#channelPattern = `{${prefix.replace(/[\\*?[\]]/g, '\\$&')}}:t:*`
    this.#timeout = commandTimeout
    this.#listener = this.#client.duplicate()
    // node-redis emits 'error' for every failed (re)connection; without a listener the
    // process would crash. Keep the last one for the messages of rejected publishes.
    this.#client.on('error', this.#onError)
    this.#client.on('error', this.#onClientError)
    this.#listener.on('error', this.#onError)
    this.#listener.on('ready', this.#onListenerReady)
    this.#listener.on('reconnecting', this.#onListenerLost)
    const connecting: Promise<unknown>[] = [this.#listener.connect()]
    if (!this.#client.isOpen) connecting.push(this.#client.connect())
    this.#connected = Promise.all(connecting).then(() => undefined)
    // Failures surface through publish/read; this promise must not be an unhandled rejection.
    this.#connected.catch(() => {})
  }

  attach(sink: BrokerSink): void {
    this.#sink = sink
  }

  async publish(topic: string, payload: string, history: number, ttl = 0): Promise<Position> {
    if (this.#closed) throw brokerError('RedisBroker is closed; the event was not published')
    if (!this.#client.isReady) {
      // Only the first connection is waited for; later outages fail fast.
      await this.#waitFirstConnection()
      if (!this.#client.isReady) {
        throw brokerError(
          'Redis is unreachable; the event was not published',
          this.#lastError ?? new Error('not connected'),
        )
      }
    }
    let reply: unknown
    try {
      reply = await this.#eval(
        PUBLISH_SCRIPT,
        PUBLISH_SHA,
        [...this.#keeping, this.#key(`h:${topic}`)],
        [
          newEpoch(),
          topic,
          String(history),
          payload,
          this.#channelPrefix + topic,
          String(ttl),
          this.#key('h:'),
        ],
        true,
      )
    } catch (cause) {
      if (cause instanceof Unsent) {
        const loading = isLoading(cause.cause)
        throw brokerError(
          `Redis is ${loading ? 'still loading its data' : 'unreachable'}; the event was not published`,
          loading ? cause.cause : (this.#lastError ?? new Error('not connected')),
        )
      }
      throw brokerError('Redis publish failed; the event may not have been published', cause)
    }
    const [epoch, seq] = reply as [string, number]
    return { epoch: String(epoch), seq: Number(seq) }
  }

  async listen(topic: string): Promise<void> {
    this.#listened.add(topic)
    await this.#listener.subscribe(this.#channelPrefix + topic, this.#onMessage)
  }

  async unlisten(topic: string): Promise<void> {
    this.#listened.delete(topic)
    if (this.#closed) return
    await this.#listener.unsubscribe(this.#channelPrefix + topic, this.#onMessage)
  }

  /** Starts delivering every topic of the prefix: one `PSUBSCRIBE` on the listening connection. */
  async listenAll(): Promise<void> {
    await this.#listener.pSubscribe(this.#channelPattern, this.#onMessage)
  }

  /** Ends what `listenAll` started (`PUNSUBSCRIBE`); topics listened to by name stay. */
  async unlistenAll(): Promise<void> {
    if (this.#closed) return
    await this.#listener.pUnsubscribe(this.#channelPattern, this.#onMessage)
  }

  async topicsAfter(after: number): Promise<TopicListing> {
    await this.#waitFirstConnection()
    let reply: unknown
    try {
      reply = await this.#eval(
        LIST_SCRIPT,
        LIST_SHA,
        [...this.#keeping],
        [newEpoch(), String(after), this.#key('h:')],
        false,
      )
    } catch (cause) {
      throw brokerError('Redis topic listing failed', cause)
    }
    const [head, forgotten, topics] = reply as [number, number, string[]]
    return { topics: topics.map(String), forgotten: Number(forgotten), head: Number(head) }
  }

  async read(topics: readonly string[], after: number, limit: number): Promise<HistoryRead> {
    await this.#waitFirstConnection()
    const perTopic = pageShare(limit, topics.length)
    let reply: unknown
    try {
      reply = await this.#eval(
        READ_SCRIPT,
        READ_SHA,
        [...this.#keeping, ...topics.map((topic) => this.#key(`h:${topic}`))],
        [newEpoch(), String(after), String(perTopic), ...topics],
        false,
      )
    } catch (cause) {
      throw brokerError('Redis history read failed', cause)
    }
    const [epochReply, headReply, trimmedList, entryLists] = reply as [
      string,
      number,
      number[],
      Array<Array<[string, string[]]>>,
    ]
    const epoch = String(epochReply)
    const head = Number(headReply)
    const trimmed = new Map<string, number>()
    const lists = topics.map((topic, index) => {
      trimmed.set(topic, Number(trimmedList[index] ?? 0))
      return (entryLists[index] ?? []).map(
        ([id, fields]): BrokerMessage => ({
          topic,
          epoch,
          seq: Number.parseInt(id, 10),
          payload: String(fields[1]),
        }),
      )
    })
    const { messages, through } = cutPage(lists, perTopic, after, head)
    return { epoch, head, messages, through, trimmed }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#listener.off('ready', this.#onListenerReady)
    this.#listener.off('reconnecting', this.#onListenerLost)
    this.#listened.clear()
    await Promise.allSettled([
      closeClient(this.#listener),
      this.#ownsClient ? closeClient(this.#client) : Promise.resolve(),
    ])
    this.#client.off('error', this.#onError)
    this.#client.off('error', this.#onClientError)
    this.#listener.off('error', this.#onError)
  }

  #key(name: string): string {
    return this.#keyPrefix + name
  }

  async #waitFirstConnection(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<void>((resolve) => {
      timer = setDeadline(resolve, this.#timeout, undefined)
    })
    try {
      await Promise.race([this.#connected.catch(() => {}), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Runs a script; `refuseOffline` as in {@link RedisBroker.#send}. */
  async #eval(
    script: string,
    sha: string,
    keys: string[],
    args: string[],
    refuseOffline: boolean,
  ): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args]
    try {
      return await this.#send(['EVALSHA', sha, ...tail], refuseOffline)
    } catch (error) {
      // Scripts are cached by Redis until it restarts: load it again on first use after.
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error
      return await this.#send(['EVAL', script, ...tail], refuseOffline)
    }
  }

  /**
   * Sends one command on the client connection; it settles within `commandTimeout`.
   *
   * The deadline is ours: node-redis's own `timeout` stops counting once a command is written,
   * so a Redis that takes the bytes and never answers (frozen, or a network that drops
   * packets) would hold the caller for good.
   *
   * With `refuseOffline` (publishes) a command never waits in node-redis's offline queue for a
   * reconnect: it is refused while the connection is not ready, and one sent in the instant
   * before node-redis noticed its connection die (queued, not yet written) is given up the
   * moment it does. Both throw {@link Unsent}: the command certainly did not run. Without it
   * (history reads), a command waits for the reconnect, up to the deadline: a catch-up read
   * issued as the listening connection comes back must not fail just because this one is a
   * moment behind. Likewise a Redis that restarted and is still loading its data answers
   * `LOADING` (the command did not run): a publish is refused as {@link Unsent}, a read is sent
   * again every {@link LOADING_RETRY} ms until the data is in, up to the deadline.
   */
  async #send(args: string[], refuseOffline: boolean): Promise<unknown> {
    if (refuseOffline && !this.#client.isReady) throw new Unsent('not connected')
    const controller = new AbortController()
    if (refuseOffline) this.#publishing.add(controller)
    let timer: ReturnType<typeof setTimeout> | undefined
    let loading = false
    const deadline = new Promise<never>((_, reject) => {
      // Judged after the replies already received: see util/deadline.ts.
      timer = setDeadline(
        () => {
          // Still unwritten: node-redis drops it and rejects it (as unsent, below) first.
          controller.abort()
          reject(
            new Error(
              loading
                ? `Redis was still loading its data after ${this.#timeout} ms`
                : `no answer from Redis in ${this.#timeout} ms`,
            ),
          )
        },
        this.#timeout,
        undefined,
      )
    })
    // A read is sent again while Redis loads; a publish is sent once (its promise is node-redis's
    // own, which rejects as soon as the abort below drops an unwritten command).
    const sent = refuseOffline
      ? this.#client.sendCommand(args, { abortSignal: controller.signal })
      : (async () => {
          for (;;) {
            try {
              return await this.#client.sendCommand(args, { abortSignal: controller.signal })
            } catch (error) {
              if (!isLoading(error)) throw error
              loading = true
              await sleep(LOADING_RETRY, undefined, { signal: controller.signal })
            }
          }
        })()
    try {
      return await Promise.race([sent, deadline])
    } catch (error) {
      // node-redis honours the abort only while the command is unwritten, and then rejects
      // with its AbortError (a class of that name; its `name` is plain 'Error').
      if (controller.signal.aborted && isAbortError(error)) {
        throw new Unsent('given up before it was written', { cause: error })
      }
      if (isLoading(error)) throw new Unsent('Redis is loading its data', { cause: error })
      throw error
    } finally {
      clearTimeout(timer)
      this.#publishing.delete(controller)
    }
  }

  readonly #onMessage = (message: string, channel: string): void => {
    const first = message.indexOf(' ')
    const second = message.indexOf(' ', first + 1)
    if (first <= 0 || second <= first) {
      this.#lastError = brokerError(`Unreadable Redis message on ${channel}: ${describe(message)}`)
      return
    }
    const epoch = message.slice(0, first)
    const seq = Number(message.slice(first + 1, second))
    // While a topic is listened to by name and through the pattern, each of its messages comes
    // twice, one right after the other. On one connection messages arrive in seq order (each is
    // published by one atomic script), so a seq not past the last one is always such a copy.
    if (epoch === this.#lastEpoch && seq <= this.#lastSeq) return
    this.#lastEpoch = epoch
    this.#lastSeq = seq
    this.#sink?.message({
      topic: channel.slice(this.#channelPrefix.length),
      epoch,
      seq,
      payload: message.slice(second + 1),
    })
  }

  // node-redis emits 'reconnecting' as soon as a ready connection is lost, before any new one
  // exists: from here the broadcaster holds live messages until the resync below has read the
  // gap, so a message that arrives between the re-subscribe and 'ready' cannot move its
  // position past the events published during the outage.
  readonly #onListenerLost = (): void => {
    if (this.#listenerReadyOnce) this.#sink?.interrupted()
  }

  // node-redis re-subscribes before it reports 'ready' again, so listening is active here and
  // a history read now covers whatever was published while the connection was down.
  readonly #onListenerReady = (): void => {
    if (!this.#listenerReadyOnce) {
      this.#listenerReadyOnce = true
      return
    }
    // Always, whatever is listened to: the broadcaster holds live messages since the
    // interruption, and only this call ends that (an instance with no subscribers now may
    // have some by the time the next message arrives).
    this.#sink?.resync()
  }

  readonly #onError = (error: unknown): void => {
    this.#lastError = error
  }

  // node-redis reports a lost connection ('error', no longer ready) before it flushes its
  // queues, and then keeps the commands not yet written for the reconnect. A publish among them
  // was sent while the connection looked healthy; refuse it now rather than let it run up to
  // `commandTimeout` later (the written ones are rejected by node-redis itself).
  readonly #onClientError = (): void => {
    if (this.#client.isReady) return
    for (const controller of this.#publishing) controller.abort()
  }
}

/** Redis's answer while it loads its data after a restart: the command did not run. */
function isLoading(error: unknown): boolean {
  return String((error as Error | undefined)?.message).startsWith('LOADING')
}

function isAbortError(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === 'AbortError' || error.constructor.name === 'AbortError')
  )
}

async function closeClient(client: RedisClientLike): Promise<void> {
  if (!client.isOpen) return
  try {
    await client.close()
  } catch {
    client.destroy()
  }
}
