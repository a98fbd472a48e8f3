/**
 * A NATS JetStream broker: several server processes share topics, history and ids.
 *
 * Layout: one stream per broker prefix (`oven` by default), named after it.
 * - `<prefix>.<epoch>.t.<token>` — a topic's messages, stored by the stream. `<token>` is `_` and
 *   the topic's UTF-8 bytes in base64url, so any topic is one subject token.
 * - The epoch is chosen at random when the stream is made and is part of every subject it takes.
 *   A stream deleted and made again (a server that lost its store, an operator) has another
 *   one, so a publish addressed to the old history finds no stream (refused, never stored under
 *   the wrong name) and the broker learns the new epoch before trying again.
 * - The stream's sequence is the `seq` of the `Broker` contract: JetStream numbers every message
 *   of a stream, whatever its subject, so one number is a position on every topic, and every
 *   instance reads the same numbers.
 * - `max_msgs_per_subject` is the count bound of each topic's history, `max_age` its age bound
 *   (`historyTtl`): both enforced by the server, per subject and per stream.
 * - `republish` copies each stored message to `<prefix>.<epoch>.l.<token>` with its stream
 *   sequence in the `Nats-Sequence` header: live delivery is one plain (core NATS) subscription
 *   per listened topic (`<prefix>.*.l.<token>`), as cheap as a Redis channel, and every message
 *   carries its position and its epoch. A JetStream consumer per topic and instance would cost
 *   server state for each.
 *
 * Pattern subscriptions (`WildcardBroker`). While the broadcaster has one, the connection also
 * holds one plain subscription to `<prefix>.*.l.>`, so it receives every message of the prefix.
 * A topic also listened to by name then arrives twice: the server hands a message to every
 * matching subscription of a connection before the next one (the stream republishes its
 * messages one by one, in seq order), so both copies come together and the second is dropped
 * (see `#onMessage`). The client subscribes it again on a reconnect, like the topics.
 * `topicsAfter` has no index to read (nats-server 2.9 reports per subject a count, not its newest
 * seq), so it takes the cheaper of two ways, both bounded: walking the messages after the
 * position (`STREAM.MSG.GET` `next_by_subj` on `<prefix>.<epoch>.t.>`, in parallel slices of the
 * range) when they are fewer than the topics, or else listing the topics (`STREAM.INFO`
 * `subjects_filter`) and reading the newest seq of each (`last_by_subj`). When both are more
 * than 10 000, the listing says so (its watermark is the head) and the reader resets.
 *
 * Why one stream, not one per topic: a stream costs the server files, timers and (clustered) a
 * Raft group, while a subject costs a little index; and only one stream gives one sequence
 * shared by every topic.
 *
 * Trim points. JetStream does not say which message it dropped, so `read` reports a bound that
 * is never too low: for a topic holding its full `history`, the seq just before its oldest kept
 * message; for every topic, the seq just before the stream's oldest message (everything older is
 * gone: expired, trimmed or purged). That is the watermark of the `Broker` contract. A reader
 * positioned in the gap just before a full topic's oldest message may get a reset it did not
 * strictly need; never a silent gap. Trim points are read after the messages, so a message
 * dropped during a read is reported trimmed rather than silently skipped.
 *
 * @module
 */

import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type MsgRequest,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream'
import { connect, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node'
import { checkOptionNames, describe, invalidOption, SseError } from '../errors.ts'
import { setDeadline } from '../util/deadline.ts'
import { checkDelay, unref } from '../util/delay.ts'
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

/** Options of {@link NatsBroker}. */
export interface NatsBrokerOptions {
  /**
   * The NATS server(s) to connect to (`nats://host:4222`, or several for a cluster); the broker
   * makes and owns its connection, which reconnects for ever.
   */
  servers?: string | string[] | undefined
  /**
   * A connection you made (`connect()` of `@nats-io/transport-node`); you close it. Give it
   * `maxReconnectAttempts: -1`, or the broker stops working once the client gives up.
   */
  connection?: NatsConnection | undefined
  /**
   * The stream's name and the root of its subjects. Processes that share topics use the same
   * prefix.
   * @defaultValue `'oven'`
   */
  prefix?: string | undefined
  /**
   * A request that gets no answer in this many ms fails (publish rejects). The first publish or
   * read of a broker may also wait this long for the first connection.
   * @defaultValue `5000`
   */
  commandTimeout?: number | undefined
  /**
   * Where the stream keeps messages: `'file'` survives a server restart, `'memory'` does not
   * (a restart is then a new epoch: subscribers are told to reset).
   * @defaultValue `'file'`
   */
  storage?: 'file' | 'memory' | undefined
  /**
   * Copies of the stream in a JetStream cluster (1 to 5).
   * @defaultValue `1`
   */
  replicas?: number | undefined
}

/** The options of {@link NatsBroker}. */
const OPTIONS = ['servers', 'connection', 'prefix', 'commandTimeout', 'storage', 'replicas']

/** The history the stream is made with when a read or a listen comes before any publish. */
const DEFAULT_HISTORY = 1000
const DEFAULT_TTL = 86_400_000
/** JetStream's default duplicate window; it may not exceed `max_age`. */
const DUPLICATE_WINDOW = 120_000
/** Between attempts to read the stream again after a reconnect (it may still be recovering). */
const RETRY_MIN = 50
const RETRY_MAX = 2000
/** Between reconnection attempts: an outage ends soon after the server is back. */
const RECONNECT_WAIT = 250
/**
 * The most topics one `topicsAfter` lists, and the most requests it makes (one per message or
 * one per topic, about 0.15 ms each): past that, the listing is a reset (it says so through its
 * watermark), not seconds of requests or one huge reply.
 */
const MAX_LISTED = 10_000
/** Requests `topicsAfter` keeps in flight at once: slices of a walk, or topics whose seq it reads. */
const LISTING_PARALLEL = 32

/** Where the broker's connection is; the one place it moves is {@link NatsBroker.#moveTo}. */
type LinkState = 'connecting' | 'connected' | 'disconnected' | 'closed'

/** A connection and the JetStream clients on it. */
interface Link {
  readonly nc: NatsConnection
  readonly js: JetStreamClient
  readonly jsm: JetStreamManager
}

/** What the broker knows of its stream: checked against what a publish asks for. */
interface StreamFacts {
  readonly epoch: string
  /** Messages kept per topic; `0` is kept as 1 by the server and read as none. */
  readonly history: number
  readonly ttl: number
}

function brokerError(message: string, cause?: unknown): SseError {
  const detail = cause instanceof Error ? `: ${cause.message}` : ''
  return new SseError('ERR_SSE_BROKER', `${message}${detail}`, { cause })
}

/** A request given up before it reached NATS: it certainly did not run. */
class Unsent extends Error {}

/** The history a stream was made for, from the description the broker gave it. */
function factsOf(info: StreamInfo): StreamFacts {
  const kept = /keeps (\d+) per topic/.exec(info.config.description ?? '')
  return {
    epoch: epochOf(info.config.subjects?.[0] ?? ''),
    history: kept ? Number(kept[1]) : info.config.max_msgs_per_subject,
    ttl: Math.round(info.config.max_age / 1e6),
  }
}

/** The epoch in a subject `<prefix>.<epoch>.<kind>...`; empty when there is none. */
function epochOf(subject: string): string {
  return subject.split('.')[1] ?? ''
}

/** The topic in a subject `<prefix>.<epoch>.<kind>._<topic in base64url>`. */
function topicOf(subject: string): string {
  const token = subject.split('.')[3] ?? ''
  return Buffer.from(token.slice(1), 'base64url').toString('utf8')
}

function isStreamNotFound(error: unknown): boolean {
  return (error as Error | undefined)?.name === 'StreamNotFoundError'
}

/** JetStream answered nothing: no stream takes the subject (or JetStream is still starting). */
function isNoResponders(error: unknown): boolean {
  const name = (error as Error | undefined)?.name
  return name === 'JetStreamNotEnabled' || name === 'NoRespondersError'
}

/**
 * A {@link Broker} on NATS JetStream, for several server processes behind a load balancer: an
 * event published on any process reaches subscribers on every process, and a client that
 * reconnects to another process with `Last-Event-ID` resumes from the stream's history.
 *
 * - `publish` resolves once JetStream has stored the message (its publish acknowledgement), and
 *   rejects with `ERR_SSE_BROKER` while NATS is unreachable: never a silent loss, never held for
 *   a reconnect. A publish in flight when the connection drops is refused at once ("may not have
 *   been published"); whatever happens, it settles within `commandTimeout`.
 * - Subscribers stay connected through an outage; when NATS is back the broker re-listens and
 *   every process catches up from the stream. If the stream was lost meanwhile (memory storage,
 *   a wiped store), subscribers receive the reset event, then everything published since.
 * - Serves subscriptions to topic patterns (`orders/*`): while an instance has one, it
 *   receives every message of the prefix and matches it itself; a client that resumes through a
 *   pattern, on any instance, gets the missed events of the matching topics
 *   (docs/authorization.md).
 * - Every process sharing a prefix must use the same `history` and `historyTtl`: they are the
 *   stream's limits, and the last publish to differ sets them.
 * - Needs nats-server 2.9 or later with JetStream (`-js`), and `@nats-io/transport-node` and
 *   `@nats-io/jetstream` 3 (optional peer dependencies).
 *
 * @example
 * ```ts
 * import { Broadcaster } from 'oven-sse'
 * import { NatsBroker } from 'oven-sse/nats'
 *
 * const hub = new Broadcaster({ broker: new NatsBroker({ servers: process.env.NATS_URL }) })
 * ```
 */
export class NatsBroker implements Broker, WildcardBroker {
  readonly #name: string
  readonly #timeout: number
  readonly #storage: 'file' | 'memory'
  readonly #replicas: number
  readonly #ownsConnection: boolean
  /** Resolves once the first connection is made; to `undefined` if the broker closes first. */
  readonly #linked: Promise<Link | undefined>
  #link: Link | undefined
  #state: LinkState = 'connecting'
  /** The stream as last read; cleared when it may have changed (reconnect, recreated). */
  #facts: Promise<StreamFacts> | undefined
  readonly #listening = new Map<string, Subscription>()
  /** The subscription to every topic's live subject, while `listenAll` holds. */
  #listeningAll: Subscription | undefined
  /** Whether `listenAll` holds: an `unlistenAll` before the first connection cancels it. */
  #wantsAll = false
  /** The last live message handed to the sink: a copy of it (see `#onMessage`) is dropped. */
  #lastEpoch = ''
  #lastSeq = 0
  /** Publishes sent and not answered: refused when the connection drops. */
  readonly #inFlight = new Set<(error: Error) => void>()
  #sink: BrokerSink | undefined
  #lastError: unknown
  #wasConnected = false
  /** Bumped by every interruption: a refresh that an interruption overtook gives up. */
  #generation = 0
  #retry: ReturnType<typeof setTimeout> | undefined
  /** Reads waiting for the connection to come back. */
  readonly #reconnected: Array<() => void> = []

  /**
   * @param options - `servers` or `connection`, and `prefix`, `commandTimeout`, `storage`,
   *   `replicas`.
   * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` for a bad option, or when neither
   *   `servers` nor `connection` is given.
   */
  constructor(options: NatsBrokerOptions) {
    checkOptionNames('NatsBroker', options, OPTIONS)
    const {
      servers,
      connection,
      prefix = 'oven',
      commandTimeout = 5000,
      storage = 'file',
      replicas = 1,
    } = options
    if (typeof prefix !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(prefix)) {
      invalidOption('prefix', '1 to 64 letters, digits, "_" or "-" (a stream name)', prefix)
    }
    checkDelay('commandTimeout', commandTimeout, { min: 1 })
    if (storage !== 'file' && storage !== 'memory') {
      invalidOption('storage', '"file" or "memory"', storage)
    }
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
      invalidOption('replicas', 'a whole number from 1 to 5', replicas)
    }
    this.#name = prefix
    this.#timeout = commandTimeout
    this.#storage = storage
    this.#replicas = replicas
    if (connection !== undefined) {
      if (
        typeof connection !== 'object' ||
        connection === null ||
        typeof connection.subscribe !== 'function' ||
        typeof connection.status !== 'function'
      ) {
        invalidOption('connection', 'a NATS connection (connect())', connection)
      }
      this.#ownsConnection = false
      this.#linked = this.#attachConnection(Promise.resolve(connection))
    } else if (
      (typeof servers === 'string' && servers !== '') ||
      (Array.isArray(servers) && servers.length > 0 && servers.every((s) => typeof s === 'string'))
    ) {
      this.#ownsConnection = true
      this.#linked = this.#attachConnection(this.#connectLoop(servers))
    } else {
      invalidOption('servers', 'a NATS URL or a list of them, or a connection option', servers)
    }
  }

  attach(sink: BrokerSink): void {
    this.#sink = sink
  }

  async publish(topic: string, payload: string, history: number, ttl = 0): Promise<Position> {
    if (this.#state === 'closed')
      throw brokerError('NatsBroker is closed; the event was not published')
    // Only the first connection is waited for; later outages fail fast.
    if (this.#state === 'connecting') await this.#waitFirstConnection()
    for (let attempt = 0; ; attempt++) {
      if (this.#state !== 'connected') {
        throw brokerError(
          'NATS is unreachable; the event was not published',
          this.#lastError ?? new Error('not connected'),
        )
      }
      let facts: StreamFacts
      try {
        facts = await this.#stream(history, ttl)
      } catch (cause) {
        throw brokerError('NATS stream unavailable; the event was not published', cause)
      }
      try {
        const ack = await this.#publishOnce(this.#subject(facts.epoch, 't', topic), payload)
        return { epoch: facts.epoch, seq: ack }
      } catch (cause) {
        // No stream took it (deleted, or made again under another epoch, or a restarted server
        // still recovering): it certainly was not stored, so learn the stream and try once more.
        if (isNoResponders(cause) && attempt === 0) {
          this.#facts = undefined
          continue
        }
        if (cause instanceof Unsent || isNoResponders(cause)) {
          throw brokerError('NATS is unreachable; the event was not published', cause)
        }
        throw brokerError('NATS publish failed; the event may not have been published', cause)
      }
    }
  }

  async listen(topic: string): Promise<void> {
    const link = await this.#linked
    if (!link || this.#listening.has(topic)) return
    const { nc } = link
    this.#listening.set(
      topic,
      // Any epoch: each live message says which history it belongs to.
      nc.subscribe(this.#subject('*', 'l', topic), { callback: this.#onMessage }),
    )
    await this.#active(nc)
  }

  async unlisten(topic: string): Promise<void> {
    const subscription = this.#listening.get(topic)
    this.#listening.delete(topic)
    subscription?.unsubscribe()
  }

  /** Starts delivering every topic of the prefix: one subscription to `<prefix>.*.l.>`. */
  async listenAll(): Promise<void> {
    this.#wantsAll = true
    const link = await this.#linked
    if (!link || !this.#wantsAll || this.#listeningAll || this.#state === 'closed') return
    const { nc } = link
    this.#listeningAll = nc.subscribe(`${this.#name}.*.l.>`, { callback: this.#onMessage })
    await this.#active(nc)
  }

  /** Ends what `listenAll` started; topics listened to by name stay. */
  async unlistenAll(): Promise<void> {
    this.#wantsAll = false
    this.#listeningAll?.unsubscribe()
    this.#listeningAll = undefined
  }

  async topicsAfter(after: number): Promise<TopicListing> {
    if (this.#state === 'connecting') await this.#waitFirstConnection()
    try {
      const jsm = this.#link?.jsm
      if (!jsm) throw new Unsent('not connected')
      // The head first: every topic with a message up to it is found by what follows.
      const info = await this.#headInfo()
      const { epoch } = factsOf(info)
      const head = info.state.last_seq
      // Everything before the stream's first message is gone (expired): a topic whose whole
      // history went with it is in no listing.
      const forgotten = Math.max(0, info.state.first_seq - 1)
      const from = Math.max(after, forgotten)
      const all = `${this.#name}.${epoch}.t.>`
      const messages = head - from
      const subjects = info.state.num_subjects ?? Number.POSITIVE_INFINITY
      // The cheaper way: one request per message after the position, or one per topic.
      let topics: string[] | undefined
      if (messages <= 0) topics = []
      else if (messages < subjects && messages <= MAX_LISTED) {
        topics = await this.#walkTopics(jsm, all, from, head)
      } else if (subjects <= MAX_LISTED) topics = await this.#newestTopics(jsm, all, after)
      if (topics === undefined) return { topics: [], forgotten: head, head }
      return { topics, forgotten, head }
    } catch (cause) {
      throw brokerError('NATS topic listing failed', cause)
    }
  }

  /** The stream's info, the stream made first if missing (so there is an epoch to report). */
  #headInfo(): Promise<StreamInfo> {
    return this.#request(() => this.#info(), 'read').catch(async (error: unknown) => {
      if (!isStreamNotFound(error)) throw error
      await this.#stream()
      return await this.#request(() => this.#info(), 'read')
    })
  }

  /**
   * The topics of the messages in `(from, head]`: the range in slices, each walked message by
   * message in parallel with the others.
   */
  async #walkTopics(
    jsm: JetStreamManager,
    all: string,
    from: number,
    head: number,
  ): Promise<string[]> {
    const found = new Set<string>()
    const size = Math.ceil((head - from) / LISTING_PARALLEL)
    const walk = async (start: number, end: number) => {
      for (let seq = start; seq <= end; ) {
        const stored = await this.#request(
          // The client's types lag the server: STREAM.MSG.GET takes `next_by_subj` since 2.9.
          () => jsm.streams.getMessage(this.#name, { seq, next_by_subj: all } as MsgRequest),
          'read',
        )
        if (!stored || stored.seq > end) return
        found.add(topicOf(stored.subject))
        seq = stored.seq + 1
      }
    }
    const slices: Promise<void>[] = []
    for (let start = from + 1; start <= head; start += size) {
      slices.push(walk(start, Math.min(start + size - 1, head)))
    }
    await Promise.all(slices)
    return [...found]
  }

  /**
   * The topics whose newest message is after `after`, or `undefined` when the stream holds more
   * than {@link MAX_LISTED} topics: every topic listed, then the newest seq of each read.
   */
  async #newestTopics(
    jsm: JetStreamManager,
    all: string,
    after: number,
  ): Promise<string[] | undefined> {
    const info = await this.#request(
      () => jsm.streams.info(this.#name, { subjects_filter: all }),
      'read',
    )
    const subjects = Object.keys(info.state.subjects ?? {})
    if (subjects.length > MAX_LISTED) return undefined
    const topics: string[] = []
    let next = 0
    const worker = async () => {
      while (next < subjects.length) {
        const subject = subjects[next++]!
        // None (`null`): gone since it was listed (expired), so nothing after anything.
        const last = await this.#request(
          () => jsm.streams.getMessage(this.#name, { last_by_subj: subject }),
          'read',
        )
        if (last && last.seq > after) topics.push(topicOf(subject))
      }
    }
    await Promise.all(Array.from({ length: Math.min(LISTING_PARALLEL, subjects.length) }, worker))
    return topics
  }

  /** Resolves once a subscription just made on `nc` is active on the server. */
  async #active(nc: NatsConnection): Promise<void> {
    // Disconnected: the client subscribes again on reconnecting, and the refresh that follows
    // asks for the catch-up (the resync of the contract).
    if (this.#state !== 'connected') return
    // Once the server has answered a ping sent after the subscription, it is active there. A
    // ping lost with the connection is no failure: the reconnect's refresh ends in a resync.
    try {
      await nc.flush()
    } catch (error) {
      if (nc.isClosed()) throw brokerError('The NATS connection is closed', error)
    }
  }

  async read(topics: readonly string[], after: number, limit: number): Promise<HistoryRead> {
    if (this.#state === 'connecting') await this.#waitFirstConnection()
    try {
      const jsm = this.#link?.jsm
      if (!jsm) throw new Unsent('not connected')
      // The head first: every message up to it is in the stream, so reading up to it is a
      // consistent prefix whatever is published meanwhile.
      // Nothing published yet: the stream is made, so the read has an epoch to report.
      const info = await this.#headInfo()
      const facts = factsOf(info)
      const head = info.state.last_seq
      const perTopic = pageShare(limit, topics.length)
      const lists = await Promise.all(
        topics.map((topic) => this.#readTopic(jsm, topic, after, perTopic, head, facts.epoch)),
      )
      const trimmed = new Map<string, number>()
      const points = await Promise.all(topics.map((topic) => this.#trimmed(jsm, topic, facts)))
      for (const [index, topic] of topics.entries()) trimmed.set(topic, points[index]!)
      // A topic that keeps nothing: whatever it has is trimmed, and none of it is read.
      const kept = facts.history === 0 ? lists.map(() => []) : lists
      const { messages, through } = cutPage(kept, perTopic, after, head)
      return { epoch: facts.epoch, head, messages, through, trimmed }
    } catch (cause) {
      throw brokerError('NATS history read failed', cause)
    }
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return
    this.#moveTo('closed')
    clearTimeout(this.#retry)
    for (const subscription of this.#listening.values()) subscription.unsubscribe()
    this.#listening.clear()
    this.#listeningAll?.unsubscribe()
    this.#listeningAll = undefined
    for (const reject of this.#inFlight) reject(new Error('the broker was closed'))
    // A connection still being made is closed when it arrives (see #attachConnection).
    if (this.#ownsConnection) await this.#link?.nc.close().catch(() => {})
  }

  // ---- connection -----------------------------------------------------------------------------

  #moveTo(state: LinkState): void {
    if (this.#state === 'closed') return
    this.#state = state
    if (state !== 'disconnected') for (const resolve of this.#reconnected.splice(0)) resolve()
  }

  /**
   * Connects, retrying until a server answers or the broker closes: the client's own
   * `waitOnFirstConnect` could not be stopped by `close()`. Once connected, the client
   * reconnects by itself, for ever.
   */
  async #connectLoop(servers: string | string[]): Promise<NatsConnection | undefined> {
    for (let failures = 0; this.#state !== 'closed'; failures++) {
      try {
        return await connect({
          servers,
          maxReconnectAttempts: -1,
          reconnectTimeWait: RECONNECT_WAIT,
        })
      } catch (error) {
        this.#lastError = error
        const delay = Math.min(RECONNECT_WAIT * 2 ** failures, RETRY_MAX)
        await new Promise((resolve) => unref(setTimeout(resolve, delay)))
      }
    }
    return undefined
  }

  /** Makes the link once connected; the broker is usable from then on. */
  async #attachConnection(
    connecting: Promise<NatsConnection | undefined>,
  ): Promise<Link | undefined> {
    const nc = await connecting
    if (!nc) return undefined
    if (this.#state === 'closed') {
      if (this.#ownsConnection) await nc.close().catch(() => {})
      return undefined
    }
    const link: Link = {
      nc,
      js: jetstream(nc),
      jsm: await jetstreamManager(nc, { checkAPI: false }),
    }
    this.#link = link
    this.#moveTo('connected')
    this.#wasConnected = true
    void this.#watch(nc)
    return link
  }

  async #watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (this.#state === 'closed') return
      if (status.type === 'disconnect') {
        this.#moveTo('disconnected')
        // The publishes in flight may or may not have reached the stream; none waits for the
        // reconnect.
        for (const reject of this.#inFlight) reject(new Error('the connection to NATS was lost'))
        this.#interrupt()
      } else if (status.type === 'reconnect') {
        this.#moveTo('connected')
        this.#refresh(this.#generation)
      } else if (status.type === 'error') {
        this.#lastError = status.error
      } else if (status.type === 'close') {
        this.#moveTo('disconnected')
        this.#lastError = new Error('the NATS connection is closed')
        for (const reject of this.#inFlight) reject(new Error('the NATS connection was closed'))
        this.#interrupt()
        return
      }
    }
  }

  /** Live delivery stopped: hold live messages until the refresh after the reconnect. */
  #interrupt(): void {
    if (this.#wasConnected) this.#sink?.interrupted()
    this.#generation++
    this.#facts = undefined
  }

  /**
   * Once listening is active again on the new connection, reads the stream (making it if the
   * server lost it), then asks the broadcaster to catch up. Retried until it works or another
   * interruption takes over.
   */
  #refresh(generation: number, failures = 0): void {
    clearTimeout(this.#retry)
    const nc = this.#link?.nc
    if (!nc || this.#state !== 'connected') return
    this.#facts = undefined
    void (async () => {
      // The subscriptions were sent again on the new connection before this ping.
      await nc.flush()
      await this.#stream()
    })().then(
      () => {
        if (generation !== this.#generation || this.#state === 'closed') return
        if (this.#wasConnected) this.#sink?.resync()
      },
      (error: unknown) => {
        if (generation !== this.#generation || this.#state !== 'connected') return
        this.#lastError = error
        const delay = Math.min(RETRY_MIN * 2 ** failures, RETRY_MAX)
        this.#retry = setTimeout(() => this.#refresh(generation, failures + 1), delay)
        unref(this.#retry)
      },
    )
  }

  async #waitFirstConnection(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<void>((resolve) => {
      timer = setDeadline(resolve, this.#timeout, undefined)
    })
    try {
      await Promise.race([this.#linked, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  // ---- the stream -----------------------------------------------------------------------------

  /** `<prefix>.<epoch>.<kind>.<topic token>`; see the module comment. */
  #subject(epoch: string, kind: 't' | 'l', topic: string): string {
    return `${this.#name}.${epoch}.${kind}._${Buffer.from(topic, 'utf8').toString('base64url')}`
  }

  #config(history: number, ttl: number): Partial<StreamConfig> {
    return {
      description: `Oven broadcast history: keeps ${history} per topic`,
      max_msgs_per_subject: Math.max(history, 1),
      max_age: ttl * 1e6,
      duplicate_window: (ttl > 0 ? Math.min(ttl, DUPLICATE_WINDOW) : DUPLICATE_WINDOW) * 1e6,
    }
  }

  /**
   * The stream's facts, made or updated to keep `history` for `ttl` when given (a publish), or
   * made with the defaults when missing (a read or a listen before any publish).
   */
  #stream(history?: number, ttl?: number): Promise<StreamFacts> {
    // A publish's requests are never held for a reconnect.
    const mode = history === undefined ? 'read' : 'publish'
    const known = this.#facts
    const fits = (facts: StreamFacts) =>
      history === undefined || (facts.history === history && facts.ttl === ttl)
    const facts = (async () => {
      const current = known ? await known.catch(() => undefined) : undefined
      if (current && fits(current)) return current
      const jsm = this.#link?.jsm
      if (!jsm) throw new Unsent('not connected')
      let info: StreamInfo
      try {
        info = await this.#request(() => this.#info(), mode)
      } catch (error) {
        if (!isStreamNotFound(error)) throw error
        info = await this.#request(
          () => this.#create(jsm, history ?? DEFAULT_HISTORY, ttl ?? DEFAULT_TTL),
          mode,
        )
      }
      let read = factsOf(info)
      if (!fits(read)) {
        info = await this.#request(
          () => jsm.streams.update(this.#name, { ...info.config, ...this.#config(history!, ttl!) }),
          mode,
        )
        read = factsOf(info)
      }
      return read
    })()
    this.#facts = facts
    facts.catch(() => {
      if (this.#facts === facts) this.#facts = undefined
    })
    return facts
  }

  #info(): Promise<StreamInfo> {
    const jsm = this.#link?.jsm
    if (!jsm) return Promise.reject(new Unsent('not connected'))
    return jsm.streams.info(this.#name)
  }

  async #create(jsm: JetStreamManager, history: number, ttl: number): Promise<StreamInfo> {
    try {
      // A new history: a new epoch, in every subject of the stream.
      const epoch = newEpoch()
      return await jsm.streams.add({
        name: this.#name,
        subjects: [`${this.#name}.${epoch}.t.>`],
        republish: { src: `${this.#name}.${epoch}.t.>`, dest: `${this.#name}.${epoch}.l.>` },
        storage: this.#storage === 'file' ? StorageType.File : StorageType.Memory,
        num_replicas: this.#replicas,
        ...this.#config(history, ttl),
      })
    } catch (error) {
      // Another process made it first (with other limits): use theirs.
      if (/already in use/.test(String((error as Error)?.message))) return await this.#info()
      throw error
    }
  }

  /** Publishes and waits for the stream's acknowledgement; returns the message's sequence. */
  async #publishOnce(subject: string, payload: string): Promise<number> {
    const js = this.#link?.js
    if (!js) throw new Unsent('not connected')
    let refuse: (error: Error) => void = () => {}
    const refused = new Promise<never>((_, reject) => {
      refuse = reject
    })
    this.#inFlight.add(refuse)
    try {
      const ack = await this.#request(
        // The client's own timeout is a backstop only: the deadline in #request decides.
        () =>
          js.publish(subject, payload, {
            timeout: this.#timeout * 2,
            expect: { streamName: this.#name },
          }),
        'publish',
        refused,
      )
      return ack.seq
    } finally {
      this.#inFlight.delete(refuse)
    }
  }

  /**
   * One request, settled within `commandTimeout` — a deadline of ours, judged after the replies
   * already received (see util/deadline.ts) — or as soon as `abandon` rejects.
   *
   * A `'publish'` request is sent once: refused while disconnected, never held for a reconnect.
   * A `'read'` request (history, stream facts) waits for the reconnect, up to the deadline: the
   * client fails requests at once while disconnected, and a catch-up read issued just as the
   * connection comes back, or a subscriber arriving during a blip, must not fail for that.
   */
  async #request<T>(
    send: () => Promise<T>,
    mode: 'publish' | 'read',
    abandon?: Promise<never>,
  ): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined
    let expired = false
    const deadline = new Promise<never>((_, reject) => {
      timer = setDeadline(
        () => {
          expired = true
          reject(new Error(`no answer from NATS in ${this.#timeout} ms`))
        },
        this.#timeout,
        undefined,
      )
    })
    const attempt = async (): Promise<T> => {
      for (;;) {
        if (mode === 'read' && this.#state === 'disconnected') await this.#whenConnected()
        try {
          return await send()
        } catch (error) {
          // Lost with the connection: send it again once it is back, unless too late.
          if (mode === 'publish' || this.#state !== 'disconnected' || expired) throw error
        }
      }
    }
    try {
      return await Promise.race([attempt(), deadline, ...(abandon ? [abandon] : [])])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Resolves once the connection is back (or the broker closed). */
  #whenConnected(): Promise<void> {
    if (this.#state !== 'disconnected') return Promise.resolve()
    return new Promise((resolve) => this.#reconnected.push(resolve))
  }

  // ---- reading --------------------------------------------------------------------------------

  /** Up to `count` messages of `topic` after `after`, up to `head`, in order. */
  async #readTopic(
    jsm: JetStreamManager,
    topic: string,
    after: number,
    count: number,
    head: number,
    epoch: string,
  ): Promise<BrokerMessage[]> {
    const subject = this.#subject(epoch, 't', topic)
    const list: BrokerMessage[] = []
    let from = after + 1
    while (list.length < count && from <= head) {
      const stored = await this.#request(
        // The client's types lag the server: STREAM.MSG.GET takes `next_by_subj` since 2.9.
        () =>
          jsm.streams.getMessage(this.#name, { seq: from, next_by_subj: subject } as MsgRequest),
        'read',
      )
      if (!stored || stored.seq > head) break
      list.push({ topic, epoch, seq: stored.seq, payload: stored.string() })
      from = stored.seq + 1
    }
    return list
  }

  /** The trim point of `topic`: see the module comment. */
  async #trimmed(jsm: JetStreamManager, topic: string, facts: StreamFacts): Promise<number> {
    const subject = this.#subject(facts.epoch, 't', topic)
    const info = await this.#request(
      () => jsm.streams.info(this.#name, { subjects_filter: subject }),
      'read',
    )
    const watermark = Math.max(0, info.state.first_seq - 1)
    const count = info.state.subjects?.[subject] ?? 0
    if (count === 0) return watermark
    if (facts.history === 0) {
      const last = await this.#request(
        () => jsm.streams.getMessage(this.#name, { last_by_subj: subject }),
        'read',
      )
      return Math.max(last?.seq ?? 0, watermark)
    }
    if (count < facts.history) return watermark
    const oldest = await this.#request(
      () => jsm.streams.getMessage(this.#name, { seq: 1, next_by_subj: subject } as MsgRequest),
      'read',
    )
    return Math.max((oldest?.seq ?? 1) - 1, watermark)
  }

  // ---- live delivery --------------------------------------------------------------------------

  readonly #onMessage = (error: Error | null, msg: Msg): void => {
    if (error) {
      this.#lastError = error
      return
    }
    const seq = Number(msg.headers?.get('Nats-Sequence'))
    if (!Number.isSafeInteger(seq) || seq <= 0) {
      this.#lastError = brokerError(`Unreadable NATS message on ${msg.subject}: ${describe(seq)}`)
      return
    }
    // `<prefix>.<epoch>.l._<topic in base64url>`: the broadcaster compares the epoch with its
    // own, and catches up from the new history when they differ.
    const epoch = epochOf(msg.subject)
    // While a topic is listened to by name and through `listenAll`, each of its messages comes
    // twice, one right after the other (see the module comment): messages arrive in seq order,
    // so a seq not past the last one is always such a copy.
    if (epoch === this.#lastEpoch && seq <= this.#lastSeq) return
    this.#lastEpoch = epoch
    this.#lastSeq = seq
    this.#sink?.message({ topic: topicOf(msg.subject), epoch, seq, payload: msg.string() })
  }
}
