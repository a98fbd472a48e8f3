/**
 * The broadcaster: topics, publish, per-client subscriptions with history and resume.
 *
 * @module
 */

import {
  type AnyContract,
  type ContractBroadcastItem,
  checkContract,
  toWireEvent,
} from '../contracts/contract.ts'
import { InOrder } from '../contracts/in-order.ts'
import { now, streamEvent } from '../diagnostics/channels.ts'
import type { Serializer, ServerSentEvent } from '../encoder/encode.ts'
import { checkOptionNames, describe, invalidOption, SseError } from '../errors.ts'
import { streamEndsOf } from '../stream/context.ts'
import { allowsShortDurations, checkDelay, type DurationRule } from '../util/delay.ts'
import {
  type AuthorizeHook,
  type Narrowed,
  narrow,
  PrivateTopics,
  requestedAsIs,
  runHook,
} from './authorize.ts'
import type { Broker } from './broker.ts'
import { formatEventId, type Position } from './event-id.ts'
import { Fanout } from './fanout.ts'
import { MemoryBroker } from './memory-broker.ts'
import { type BroadcastItem, toEvent, toPayload } from './payload.ts'
import {
  type BroadcastFilter,
  type OverflowPolicy,
  Subscription,
  type SubscriptionLimits,
} from './subscription.ts'
import { isPattern, type Pattern, parsePattern } from './topic-pattern.ts'

/**
 * Options of {@link Broadcaster}; `C` is the bound contract, if any; `Req` the request the
 * `authorize` hook receives (`ctx.request`: an `IncomingMessage` on Node, the framework's
 * request in an adapter, a web `Request` on the web path).
 */
export interface BroadcasterOptions<C extends AnyContract | undefined = undefined, Req = unknown> {
  /**
   * A contract (`defineContract`) for every event published: `publish` is type-checked
   * against it, and each item is checked before it is published (its data validated by its
   * schema unless the contract says `validate: false`); one it refuses is never published:
   * `publish` rejects with `ERR_SSE_INVALID_EVENT` or `ERR_SSE_INVALID_DATA`. Data goes out as
   * JSON (the `serialize` option does not apply to it).
   * @defaultValue none: any item
   */
  contract?: C
  /**
   * Where events go between publish and subscribers: in this process, or shared by several
   * processes (`RedisBroker` from `oven-sse/redis`, `NatsBroker` from `oven-sse/nats`). The
   * broadcaster owns it: `close()` closes it.
   * @defaultValue a new {@link MemoryBroker}
   */
  broker?: Broker | undefined
  /**
   * How many events each topic keeps for clients that reconnect with `Last-Event-ID`. `0`
   * keeps none (a reconnecting client is always told to reset).
   * @defaultValue `1000`
   */
  history?: number | undefined
  /**
   * How long (ms) each event stays in its topic's history. An older event leaves it (a client
   * resuming from before it receives the {@link RESET_EVENT} with reason `'expired'`), and a
   * topic whose events have all expired is forgotten by the broker, so a topic per job or per
   * generation costs nothing once it is a day old. `0` keeps events until `history` pushes them
   * out, and keeps every topic ever published to for the life of the broker. A whole number of
   * ms, at least 1000 (tests go lower with `shortDurations()` from `oven-sse/testing`).
   * @defaultValue `86400000` (24 hours)
   */
  historyTtl?: number | undefined
  /**
   * How many events may wait for one slow subscriber before the `overflow` policy applies.
   * @defaultValue `1000`
   */
  queue?: number | undefined
  /**
   * The most missed events a reconnecting client is sent from the history. A client that
   * missed more (a tab asleep for hours on a busy topic) receives the {@link RESET_EVENT} with
   * reason `'expired'` instead, as when its position is older than the history: it reloads
   * instead of being replayed a backlog that this process would have to hold in memory.
   * @defaultValue `10000`
   */
  maxResume?: number | undefined
  /**
   * The most topics one subscription may cover. Topics often come from the request (a query
   * string, a POST body), so this bounds what one client can make the process hold and scan.
   * @defaultValue `1000`
   */
  maxTopics?: number | undefined
  /**
   * What to do when a subscriber's queue is full; see {@link OverflowPolicy}.
   * @defaultValue `'disconnect'`
   */
  overflow?: OverflowPolicy | undefined
  /**
   * Turns non-string `data` into text, once per publish.
   * @defaultValue `JSON.stringify`
   */
  serialize?: Serializer | undefined
  /**
   * Receives errors that belong to no caller: a broker message that cannot be read, a failed
   * catch-up after an interruption (retried).
   * @defaultValue logs with `console.error`
   */
  onError?: ((error: unknown) => void) | undefined
  /**
   * Decides, per request, which of the requested topics a client may subscribe to, before
   * anything is sent: `true`, `false`, grants (topics and patterns, `{ grant, params }`) or
   * `{ refuse: 401 | 403 }` (see {@link Authorization}). With it, subscribe through
   * {@link Broadcaster.subscribeAuthorized}; `subscribe` throws. A refusal ends the stream
   * before its head: the client gets `401` or `403`. A hook that throws is an error (your
   * framework's 500), never a refusal. docs/authorization.md.
   * @defaultValue none: every subscription gets what it asks for
   */
  authorize?: AuthorizeHook<Req> | undefined
  /**
   * How long (ms) `authorize` may take before the subscription fails with `ERR_SSE_TIMEOUT`
   * (an error: your framework's 500). A whole number of ms, at least 1.
   * @defaultValue `10000`
   */
  authorizeTimeout?: number | undefined
  /**
   * Topics (patterns: `user/*\/**`) only explicitly granted subscribers receive: a topic
   * matching one is reached only by grants and requested patterns with literal segments
   * wherever the declaration has a segment before its trailing `**` (so `user/42/**` reaches
   * `user/42/inbox`; `user/*\/inbox`, `**` do not). See docs/authorization.md.
   * @defaultValue none
   */
  privateTopics?: readonly string[] | undefined
}

/** Options of {@link Broadcaster.subscribe}. */
export interface SubscribeOptions {
  /**
   * The client's `Last-Event-ID`: the subscription first sends what the client missed since
   * then. Pass the stream context (`ctx`) as the options and this is filled in for you.
   */
  lastEventId?: string | undefined
  /** Ends the subscription when aborted (pass `ctx.signal`). */
  signal?: AbortSignal | undefined
  /** Sends an event to this subscriber only when it returns `true`. */
  filter?: BroadcastFilter | undefined
  /**
   * The request, for the `authorize` hook of {@link Broadcaster.subscribeAuthorized}: pass the
   * stream context (`ctx`) as the options and this is `ctx.request`. Ignored by `subscribe`.
   */
  request?: unknown
}

/** Counters of a {@link Broadcaster}, for metrics. */
export interface BroadcastStats {
  /** Events published through this broadcaster. */
  readonly published: number
  /** Events handed to subscribers' streams (one per event per subscriber). */
  readonly delivered: number
  /** Events discarded by the `'drop-oldest'` policy. */
  readonly dropped: number
  /** Subscribers ended by the `'disconnect'` policy. */
  readonly disconnected: number
  /** Reset events sent (a subscriber could not resume without loss). */
  readonly resets: number
  /** Current subscribers on this process. */
  readonly subscribers: number
  /** Topics with at least one subscriber on this process. */
  readonly topics: number
}

/** The options of {@link Broadcaster} and of {@link Broadcaster.subscribe}. */
const OPTIONS = [
  'broker',
  'history',
  'historyTtl',
  'queue',
  'maxResume',
  'maxTopics',
  'overflow',
  'serialize',
  'onError',
  'contract',
  'authorize',
  'authorizeTimeout',
  'privateTopics',
]
const SUBSCRIBE_OPTIONS = ['lastEventId', 'signal', 'filter', 'request']
const MAX_TOPIC_LENGTH = 512

/** The default `historyTtl`: a day, long enough that no one resuming expects more. */
const DEFAULT_HISTORY_TTL = 86_400_000

// Least `historyTtl` outside tests: `historyTtl: 3600` is an hour written in seconds.
const HISTORY_TTL: DurationRule = { min: 1000, zero: 'to keep events until history drops them' }

function checkCount(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    invalidOption(name, `an integer >= ${min}`, value)
  }
  return value
}

function checkTopic(topic: unknown, where: string): string {
  if (typeof topic !== 'string' || topic === '' || topic.length > MAX_TOPIC_LENGTH) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Invalid topic in ${where}: expected a non-empty string of at most ${MAX_TOPIC_LENGTH} ` +
        `characters, received ${describe(topic)}.`,
    )
  }
  // A broker stores names as UTF-8, which cannot carry a lone surrogate: Redis would turn it
  // into U+FFFD, and the topic would read another topic's history and never get its own events.
  if (!topic.isWellFormed()) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Invalid topic in ${where}: expected well-formed Unicode text, received ${describe(topic)}, ` +
        'which holds a lone surrogate (UTF-8 cannot carry it).',
    )
  }
  return topic
}

/** A published topic: any topic, without the characters reserved for patterns. */
function checkPublishedTopic(topic: unknown): string {
  const checked = checkTopic(topic, 'publish()')
  if (isPattern(checked)) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      'Invalid topic in publish(): expected a topic without "*", "{" or "}" (reserved for ' +
        `patterns), received ${describe(checked)}.`,
    )
  }
  return checked
}

function checkPrivateTopics(value: unknown): PrivateTopics {
  if (value === undefined) return new PrivateTopics([])
  if (!Array.isArray(value)) invalidOption('privateTopics', 'an array of topic patterns', value)
  return new PrivateTopics(
    value.map((text: unknown) =>
      parsePattern(checkTopic(text, 'privateTopics'), 'privateTopics', false),
    ),
  )
}

function checkBroker(broker: unknown): Broker {
  const methods = ['attach', 'publish', 'listen', 'unlisten', 'read', 'close'] as const
  if (
    typeof broker !== 'object' ||
    broker === null ||
    methods.some((name) => typeof (broker as Record<string, unknown>)[name] !== 'function')
  ) {
    invalidOption('broker', `a broker (an object with ${methods.join(', ')})`, broker)
  }
  return broker as Broker
}

/** What {@link Broadcaster.publish} takes: any item, or the events of the bound contract. */
export type PublishItem<C extends AnyContract | undefined> = [C] extends [AnyContract]
  ? ContractBroadcastItem<C>
  : BroadcastItem

/**
 * Sends each published event to every subscriber of its topic — on this process, or on every
 * process sharing a Redis broker — with a bounded history so a reconnecting client resumes
 * from its `Last-Event-ID` without loss.
 *
 * - Each event is encoded once (per process) and the same text goes to every subscriber.
 * - Each subscriber has a bounded queue; a slow one never delays the others and never holds
 *   more than `queue` events (see `overflow`).
 * - Event ids are `<epoch>-<seq>` positions; a client whose position the history no longer
 *   covers receives a {@link RESET_EVENT} telling it to reload.
 *
 * @example
 * ```ts
 * import { Broadcaster, EventSourceResponse } from 'oven-sse'
 *
 * const hub = new Broadcaster()
 *
 * // GET /events?room=lobby — one stream, resumable
 * app.get('/events', (c) =>
 *   new EventSourceResponse((ctx) => hub.subscribe([`room:${c.req.query('room')}`], ctx), {
 *     request: c.req.raw,
 *   }),
 * )
 *
 * // POST /say
 * app.post('/say', async (c) => {
 *   const { room, text } = await c.req.json()
 *   const id = await hub.publish(`room:${room}`, { event: 'message', data: { text } })
 *   return c.json({ id })
 * })
 * ```
 *
 * With a `contract`, `publish` takes only the contract's events (see
 * {@link BroadcasterOptions.contract}): `new Broadcaster({ contract: jobEvents })`.
 */
export class Broadcaster<C extends AnyContract | undefined = undefined, Req = unknown> {
  /** The bound contract, and the order keeper of its (possibly async) checks. */
  readonly #contract: { contract: AnyContract; inOrder: InOrder } | undefined
  readonly #broker: Broker
  readonly #history: number
  readonly #historyTtl: number
  readonly #maxTopics: number
  /** Queue size, resume bound and overflow policy: one object for every subscription. */
  readonly #limits: SubscriptionLimits
  readonly #serialize: Serializer | undefined
  readonly #fanout: Fanout
  readonly #authorize: AuthorizeHook<Req> | undefined
  readonly #authorizeTimeout: number
  #closed = false

  /**
   * @param options - see {@link BroadcasterOptions}.
   * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` for an unknown or invalid option.
   */
  constructor(options: BroadcasterOptions<C, Req> = {}) {
    checkOptionNames('Broadcaster', options, OPTIONS)
    this.#contract =
      options.contract === undefined
        ? undefined
        : { contract: checkContract(options.contract), inOrder: new InOrder() }
    this.#broker = options.broker === undefined ? new MemoryBroker() : checkBroker(options.broker)
    this.#history = checkCount('history', options.history, 1000, 0)
    this.#historyTtl =
      options.historyTtl === undefined
        ? DEFAULT_HISTORY_TTL
        : checkDelay('historyTtl', options.historyTtl, HISTORY_TTL, allowsShortDurations(options))
    const capacity = checkCount('queue', options.queue, 1000, 1)
    this.#maxTopics = checkCount('maxTopics', options.maxTopics, 1000, 1)
    const maxResume = checkCount('maxResume', options.maxResume, 10_000, 0)
    const overflow = options.overflow ?? 'disconnect'
    if (overflow !== 'disconnect' && overflow !== 'drop-oldest') {
      invalidOption('overflow', '"disconnect" or "drop-oldest"', overflow)
    }
    this.#limits = Object.freeze({ capacity, maxResume, overflow })
    if (options.serialize !== undefined && typeof options.serialize !== 'function') {
      invalidOption('serialize', 'a function', options.serialize)
    }
    this.#serialize = options.serialize
    if (options.onError !== undefined && typeof options.onError !== 'function') {
      invalidOption('onError', 'a function', options.onError)
    }
    const onError =
      options.onError ?? ((error) => console.error('[oven-sse] broadcaster error:', error))
    if (options.authorize !== undefined && typeof options.authorize !== 'function') {
      invalidOption('authorize', 'a function (request, topics) => grants', options.authorize)
    }
    this.#authorize = options.authorize
    this.#authorizeTimeout = checkCount('authorizeTimeout', options.authorizeTimeout, 10_000, 1)
    const privateTopics = checkPrivateTopics(options.privateTopics)
    this.#fanout = new Fanout(this.#broker, onError, this, privateTopics)
    this.#broker.attach(this.#fanout.feed)
  }

  /**
   * Publishes `item` to `topic`: stores it in the topic's history and sends it to every
   * subscriber. The item is checked here, so a bad field throws in the caller.
   *
   * @param topic - any non-empty string (at most 512 characters).
   * @param item - text (sent as `data`), event fields `{ data, event, retry, comment }` or a
   *   `ServerSentEvent`, without `id`: the broadcaster assigns it. With a `contract`: one of
   *   its events, `{ event, data, retry? }`.
   * @returns the event's id, the position clients resume from.
   * @throws {@link SseError} `ERR_SSE_INVALID_EVENT` / `ERR_SSE_INVALID_FIELD` for a bad item,
   *   `ERR_SSE_INVALID_DATA` for data the contract's schema rejects;
   *   rejects with `ERR_SSE_BROKER` when the broker cannot take it (Redis unreachable): the
   *   event was then not published.
   */
  publish(topic: string, item: PublishItem<C>): Promise<string> {
    // The life of one published event, hop by hop (each name is a method to jump to):
    //
    //  1. `toPayload` (payload.ts) checks the item and serializes it once: the payload.
    //  2. `Broker.publish` stores it in the topic's history under the next seq and sends it
    //     live: `MemoryBroker` at once; `RedisBroker` through a script (XADD + PUBLISH), and
    //     every process's listener connection gets it in `#onMessage`.
    //  3. The broker calls its sink, `LiveFeed.message` (live-feed.ts), which queues it and
    //     delivers in seq order, holding messages while interrupted or catching up.
    //  4. `Fanout.deliver` (fanout.ts) decodes it once per process into a `ServerSentEvent`
    //     (`DecodedEvents`, whose text is encoded once) and calls `Subscription.offer` for
    //     each subscriber of the topic.
    //  5. `Subscription.offer` applies the filter and the bounded queue (overflow policy), and
    //     asks `Fanout.scheduleWake` to wake it.
    //     Batching point 1: subscriptions are woken once per burst (`scheduleAfterBurst`), so
    //     events published together reach each stream together.
    //  6. `Subscription.wake` hands the first event to the waiting stream, `Pump.receive`
    //     (stream/pump.ts), which takes the rest of the queue synchronously through `pullInto`.
    //  7. `Pump.#emit` appends the event's text to the pending batch (`#push`).
    //     Batching point 2: the batch is written at the end of the burst, or at 16 KiB.
    //  8. `Pump.#flush` hands it to the transport's `Sink.write`: `res.write` on Node
    //     (transports/node.ts), a chunk enqueued on the body's stream on the web path.
    try {
      checkPublishedTopic(topic)
      const bound = this.#contract
      if (bound !== undefined) {
        // Checked (maybe by an async schema) first, published in call order: data as JSON text.
        return bound.inOrder.run(toWireEvent(bound.contract, item), (event) =>
          this.#publish(topic, toEvent(event, undefined)),
        )
      }
      return this.#publish(topic, toEvent(item, this.#serialize))
    } catch (error) {
      // A bad topic or item rejects, as everything else publish reports.
      return Promise.reject(error)
    }
  }

  /** Publishes a checked event: see {@link Broadcaster.publish}. */
  async #publish(topic: string, event: ServerSentEvent): Promise<string> {
    if (this.#closed) {
      throw new SseError('ERR_SSE_BROKER', 'Broadcaster is closed; the event was not published.')
    }
    // The start of the delivery latency, kept only for someone observing it, and only when
    // this process has subscribers to deliver to (docs/observability.md).
    const fanout = this.#fanout
    const payload = toPayload(event)
    const publishedAt =
      streamEvent.hasSubscribers && fanout.subscriberCount(topic) > 0 ? now() : undefined
    if (publishedAt !== undefined) fanout.pending.add(payload, publishedAt)
    let position: Position
    try {
      // A broker that delivers here during the call (the in-process one) hands the fan-out this
      // payload: it then takes the event's checked fields instead of parsing the payload back.
      let publishing: Promise<Position>
      fanout.publishing(payload, event)
      try {
        publishing = this.#broker.publish(topic, payload, this.#history, this.#historyTtl)
      } finally {
        fanout.publishing(undefined, undefined)
      }
      position = await publishing
    } catch (error) {
      if (publishedAt !== undefined) fanout.pending.forget(payload, publishedAt)
      throw error
    }
    fanout.stats.published++
    return formatEventId(position.epoch, position.seq)
  }

  /**
   * Subscribes to `topics` (one stream may carry several feeds). The result is content for
   * `EventSourceResponse` or `sendEventStream`; it yields shared `ServerSentEvent`s.
   *
   * With `lastEventId`, the client first receives exactly the events it missed, then live ones.
   * When its position is too old, from a lost history, or not one of ours, it receives a
   * {@link RESET_EVENT} instead, then live events.
   *
   * @param topics - a topic or a list of topics.
   * @param options - `lastEventId`, `signal`, `filter`; a stream context (`ctx`) works as is.
   * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` for bad topics or options;
   *   `ERR_SSE_BROKER` once the broadcaster is closed.
   *
   * @example
   * ```ts
   * sendEventStream(req, res, (ctx) => hub.subscribe(['news', `user:${userId}`], ctx))
   * ```
   */
  subscribe(topics: string | readonly string[], options: SubscribeOptions = {}): Subscription {
    if (this.#authorize) {
      throw new SseError(
        'ERR_SSE_INVALID_OPTION',
        'This Broadcaster has an authorize hook: subscribe with ' +
          '`await hub.subscribeAuthorized(topics, ctx)`, so that every subscription is authorized.',
      )
    }
    const requested = this.#requested(topics, options)
    return this.#open(requestedAsIs(requested), options)
  }

  /**
   * Subscribes to what the `authorize` hook grants of `topics`, for `options.request` (pass the
   * stream context, `ctx`). Runs before anything is sent, so a content function
   * `(ctx) => hub.subscribeAuthorized(topics, ctx)` answers a refusal with `401` or `403`
   * through the transport (on the web path, through an adapter or `openEventSourceResponse`).
   * Without a hook, the same as {@link Broadcaster.subscribe}.
   *
   * @param topics - topics and patterns (`orders/*`, `news/**`); see docs/authorization.md.
   * @param options - as {@link Broadcaster.subscribe}; `request` is what `authorize` receives.
   * @returns the subscription, with the requested topics narrowed to the granted ones.
   * @throws {@link SseError} as `subscribe` does, at once; rejects with `ERR_SSE_UNAUTHORIZED` /
   *   `ERR_SSE_FORBIDDEN` for a refusal (or nothing granted), `ERR_SSE_TIMEOUT` past
   *   `authorizeTimeout`, or what the hook threw.
   *
   * @example
   * ```ts
   * const hub = new Broadcaster<undefined, IncomingMessage>({
   *   authorize: (req, topics) => (req.headers.authorization === 'Bearer ok' ? true : { refuse: 401 }),
   * })
   * sendEventStream(req, res, (ctx) => hub.subscribeAuthorized(['news'], ctx))
   * ```
   */
  async subscribeAuthorized(
    topics: string | readonly string[],
    options: SubscribeOptions = {},
  ): Promise<Subscription> {
    const requested = this.#requested(topics, options)
    const hook = this.#authorize
    if (!hook) return this.#open(requestedAsIs(requested), options)
    const answer = await runHook(
      hook,
      options.request as Req,
      requested.map((pattern) => pattern.source),
      this.#authorizeTimeout,
    )
    return this.#open(
      narrow(answer, requested, this.#fanout.privateTopics, this.#maxTopics),
      options,
    )
  }

  /** The checked, parsed topics and patterns of a subscription, and its checked options. */
  #requested(topics: unknown, options: SubscribeOptions): Pattern[] {
    const list = typeof topics === 'string' ? [topics] : topics
    if (!Array.isArray(list) || list.length === 0) {
      invalidOption('topics', 'a topic or a non-empty array of topics', topics)
    }
    // Before anything else, parsing included: topics often come from the request.
    if (list.length > this.#maxTopics) {
      throw new SseError(
        'ERR_SSE_INVALID_OPTION',
        `Invalid option "topics": expected at most ${this.#maxTopics} topics per subscription ` +
          `(the Broadcaster's maxTopics option), received ${list.length}.`,
      )
    }
    const unique = [...new Set(list.map((topic: unknown) => checkTopic(topic, 'subscribe()')))]
    const requested = unique.map((topic) => parsePattern(topic, 'subscribe()', false))
    if (requested.some((pattern) => pattern.wild) && !this.#fanout.servesPatterns) {
      throw new SseError(
        'ERR_SSE_INVALID_OPTION',
        'Invalid option "topics": a pattern needs a broker that can listen to every topic ' +
          '(listenAll, unlistenAll, topicsAfter: MemoryBroker, RedisBroker and NatsBroker have them), received one ' +
          `without, and the pattern ${JSON.stringify(requested.find((p) => p.wild)!.source)}.`,
      )
    }
    checkOptionNames('subscribe()', options, SUBSCRIBE_OPTIONS)
    const { lastEventId, filter } = options
    if (lastEventId !== undefined && typeof lastEventId !== 'string') {
      invalidOption('lastEventId', 'a string', lastEventId)
    }
    if (filter !== undefined && typeof filter !== 'function') {
      invalidOption('filter', 'a function (event, topic) => boolean', filter)
    }
    this.#checkOpen()
    return requested
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new SseError('ERR_SSE_BROKER', 'Broadcaster is closed; cannot subscribe.')
    }
  }

  /** The subscription to what was granted. */
  #open(narrowed: Narrowed, options: SubscribeOptions): Subscription {
    // Closed while the hook ran: as if closed before.
    this.#checkOpen()
    return new Subscription(this.#fanout, {
      topics: narrowed.topics,
      patterns: narrowed.patterns,
      grants: narrowed.grants,
      limits: this.#limits,
      filter: options.filter,
      lastEventId: options.lastEventId,
      // A stream's own context ends it without making `ctx.signal` (stream/context.ts).
      ends: streamEndsOf(options) ?? options.signal,
    })
  }

  /**
   * How many subscribers this process has, on `topic` or in all.
   *
   * @param topic - count only the subscribers of this topic.
   */
  subscribers(topic?: string): number {
    return this.#fanout.subscriberCount(topic)
  }

  /** Counters for metrics; see {@link BroadcastStats}. */
  stats(): BroadcastStats {
    const fanout = this.#fanout
    return { ...fanout.stats, subscribers: fanout.subscriberCount(), topics: fanout.topicCount }
  }

  /**
   * Ends every subscription (their streams finish, so clients reconnect — to another instance
   * behind a load balancer) and closes the broker. Later `publish` calls reject.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#fanout.close()
    await this.#broker.close()
  }
}
