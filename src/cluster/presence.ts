/**
 * Presence: who is connected to a topic, across every instance that shares a store, with
 * join and leave events a topic's subscribers can opt into.
 *
 * Each joined connection is an entry in the store with an expiry time; the instance that holds
 * it renews it on a heartbeat, and gives it back when the connection ends. An instance that dies
 * without a goodbye (SIGKILL, a lost machine) stops renewing, so its entries expire within one
 * `ttl`, and the next sweep by any instance removes them and announces the leaves.
 *
 * Web-standard: no `node:` imports.
 *
 * @module
 */

import type { Broadcaster } from '../broadcast/broadcaster.ts'
import { checkOptionNames, describe, invalidOption, SseError } from '../errors.ts'
import { allowsShortDurations, checkDelay } from '../util/delay.ts'

/** One member present on a topic. */
export interface PresenceMember {
  /** The member's id, as given to {@link Presence.join}. */
  readonly member: string
  /** How many connections the member holds on the topic, over every instance. */
  readonly connections: number
  /** The `info` of the member's latest join, if it gave one. */
  readonly info?: unknown
}

/** What {@link Presence.members} returns. */
export interface PresenceList {
  /** How many members the topic has, over every instance. */
  readonly total: number
  /** Up to `maxMembers` of them, in no particular order. */
  readonly members: readonly PresenceMember[]
}

/** A member's connection that ended: its last one on the topic. */
export interface PresenceLeave {
  readonly topic: string
  readonly member: string
}

/**
 * Where presence entries live: in this process ({@link MemoryPresenceStore}) or shared by
 * several (`RedisPresenceStore` from `oven-sse/redis`). Times are the store's own clock, so
 * instances with skewed clocks still agree on what expired.
 */
export interface PresenceStore {
  /**
   * Adds `connection` (an id unique over every instance) of `member` to `topic`, expiring in
   * `ttl` ms unless renewed. Resolves `true` when it is the member's first connection there.
   * `info` is the member's info as JSON, or `undefined`.
   */
  join(
    topic: string,
    connection: string,
    member: string,
    info: string | undefined,
    ttl: number,
  ): Promise<boolean>
  /** Removes `connection`; resolves the member's leave when it was their last connection. */
  leave(connection: string): Promise<PresenceLeave | undefined>
  /**
   * Renews `connections` for another `ttl` ms. Resolves those the store no longer has (swept
   * while this instance could not renew them), which the caller joins again.
   */
  renew(connections: readonly string[], ttl: number): Promise<string[]>
  /**
   * Removes up to `limit` expired connections; resolves how many it removed and the leaves
   * they make (a member whose last connection expired).
   */
  sweep(limit: number): Promise<{ removed: number; leaves: PresenceLeave[] }>
  /** The topic's member count, and up to `limit` members. */
  members(topic: string, limit: number): Promise<PresenceList>
  /** Releases the store's resources (its connection). */
  close(): Promise<void>
}

/** The data of a presence event, published as `event: presence` on the events topic. */
export interface PresenceEvent {
  /** `join`: a member's first connection to the topic; `leave`: their last one ended. */
  readonly action: 'join' | 'leave'
  /** The topic the member joined or left. */
  readonly topic: string
  readonly member: string
  /** The member's info, on a join. */
  readonly info?: unknown
  /** On a leave: `left` (the connection ended) or `expired` (its instance stopped renewing it). */
  readonly reason?: 'left' | 'expired'
}

/** Options of {@link Presence}. */
export interface PresenceOptions {
  /** Where entries live. */
  store: PresenceStore
  /**
   * Publishes join and leave events here, on {@link Presence.eventsTopic}: a subscriber opts in
   * by adding that topic to its subscription. Leave it out for no events.
   */
  broadcaster?: Broadcaster<undefined> | undefined
  /**
   * How long (ms) an entry outlives its instance's last renewal: the longest a member of a
   * dead instance still shows as present. Entries are renewed every third of it. A whole number
   * of ms, at least 3000 (tests go lower with `shortDurations()` from `oven-sse/testing`).
   * @defaultValue `30000`
   */
  ttl?: number | undefined
  /**
   * The most members {@link Presence.members} lists (the total is always exact).
   * @defaultValue `1000`
   */
  maxMembers?: number | undefined
  /**
   * The most connections this process may have joined at once; a join past it throws
   * `ERR_SSE_PRESENCE_FULL`. Bounds what a flood of connections can make the store hold.
   * @defaultValue `100000`
   */
  maxConnections?: number | undefined
  /**
   * The topic a topic's presence events go to.
   * @defaultValue `` (topic) => `presence:${topic}` ``
   */
  eventsTopic?: ((topic: string) => string) | undefined
  /**
   * Receives errors that belong to no caller: a failed renewal or sweep (tried again on the
   * next heartbeat), a presence event that could not be published.
   * @defaultValue logs with `console.error`
   */
  onError?: ((error: unknown) => void) | undefined
}

/** Options of {@link Presence.join}. */
export interface JoinOptions {
  /** Shown with the member in {@link Presence.members} and in the join event; JSON, ≤ 4 KiB. */
  info?: unknown
  /** Leaves when aborted (pass `ctx.signal`): the connection's end is the member's leave. */
  signal?: AbortSignal | undefined
}

/** Gives the connection's place back; resolves once the store has it. Later calls do nothing. */
export type LeavePresence = () => Promise<void>

const OPTIONS = [
  'store',
  'broadcaster',
  'ttl',
  'maxMembers',
  'maxConnections',
  'eventsTopic',
  'onError',
]
const JOIN_OPTIONS = ['info', 'signal']
/** The longest member id and topic accepted. */
const MAX_ID = 1024
/** The largest `info`, as JSON. */
const MAX_INFO = 4096
/** Expired entries one sweep call removes; a heartbeat makes up to {@link SWEEP_ROUNDS} calls. */
const SWEEP_BATCH = 500
const SWEEP_ROUNDS = 20
/** Connections renewed per store call. */
const RENEW_BATCH = 1000

function count(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    invalidOption(name, 'a positive integer', value)
  }
  return value
}

function checkId(what: string, value: unknown): string {
  if (typeof value !== 'string' || value === '' || value.length > MAX_ID || !value.isWellFormed()) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Presence: ${what} must be a non-empty string of at most ${MAX_ID} characters in well-formed Unicode, received ${describe(value)}.`,
    )
  }
  return value
}

function encodeInfo(info: unknown): string | undefined {
  if (info === undefined) return undefined
  let json: string | undefined
  try {
    json = JSON.stringify(info)
  } catch (cause) {
    throw new SseError('ERR_SSE_INVALID_OPTION', 'Presence: info cannot be turned into JSON.', {
      cause,
    })
  }
  if (json === undefined || json.length > MAX_INFO) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Presence: info must be JSON of at most ${MAX_INFO} characters, received ${json === undefined ? describe(info) : `${json.length} characters`}.`,
    )
  }
  return json
}

/** A name for this process, unique enough that two instances never share connection ids. */
function instanceName(): string {
  return crypto.randomUUID()
}

interface Joined {
  readonly topic: string
  readonly member: string
  readonly info: string | undefined
}

/**
 * Who is connected to which topic, over every instance sharing the store; join and leave
 * events for subscribers that want them.
 *
 * A member (a user id, say) may hold several connections (tabs, devices, instances): it joins
 * with the first and leaves with the last. Events are published through the `broadcaster` on
 * `eventsTopic(topic)`, so they travel like any event (history, resume, every instance), and
 * only subscribers that add that topic receive them. They are announcements, published after
 * the store changed: {@link Presence.members} is the truth; an instance that dies between the
 * change and the publish loses that one announcement, not the change.
 *
 * @example
 * ```ts
 * import { Broadcaster, Presence } from 'oven-sse'
 * import { sendEventStream } from 'oven-sse/node'
 * import { RedisBroker, RedisPresenceStore } from 'oven-sse/redis'
 *
 * const hub = new Broadcaster({ broker: new RedisBroker({ url: process.env.REDIS_URL }) })
 * const presence = new Presence({
 *   store: new RedisPresenceStore({ url: process.env.REDIS_URL }),
 *   broadcaster: hub,
 * })
 *
 * app.get('/rooms/:room/events', (req, res) => {
 *   const room = `room:${req.params.room}`
 *   sendEventStream(req, res, async (ctx) => {
 *     // Subscribed (and live) first: the member's own join is then among its events.
 *     const events = hub.subscribe([room, presence.eventsTopic(room)], ctx)
 *     await events.ready
 *     await presence.join(room, req.user.id, { signal: ctx.signal, info: { name: req.user.name } })
 *     return events
 *   })
 * })
 * app.get('/rooms/:room/members', async (req, res) => {
 *   res.json(await presence.members(`room:${req.params.room}`))
 * })
 * ```
 */
export class Presence {
  /** How long an entry outlives its last renewal, in ms. */
  readonly ttl: number
  readonly #store: PresenceStore
  readonly #hub: Broadcaster<undefined> | undefined
  readonly #maxMembers: number
  readonly #maxConnections: number
  readonly #eventsTopic: (topic: string) => string
  readonly #onError: (error: unknown) => void
  readonly #instance = instanceName()
  readonly #joined = new Map<string, Joined>()
  /** Leaves under way (a signal aborted): `close()` waits for their announcements. */
  readonly #leaving = new Set<Promise<void>>()
  readonly #timer: ReturnType<typeof setInterval>
  #sequence = 0
  #beating: Promise<void> | undefined
  #closed = false

  /**
   * @param options - see {@link PresenceOptions}.
   * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` for a bad option.
   */
  constructor(options: PresenceOptions) {
    checkOptionNames('Presence', options, OPTIONS)
    const { store, broadcaster, eventsTopic, onError } = options
    if (typeof store !== 'object' || store === null || typeof store.join !== 'function') {
      invalidOption('store', 'a PresenceStore (MemoryPresenceStore, RedisPresenceStore)', store)
    }
    if (broadcaster !== undefined && typeof broadcaster?.publish !== 'function') {
      invalidOption('broadcaster', 'a Broadcaster', broadcaster)
    }
    if (eventsTopic !== undefined && typeof eventsTopic !== 'function') {
      invalidOption('eventsTopic', 'a function (topic) => string', eventsTopic)
    }
    if (onError !== undefined && typeof onError !== 'function') {
      invalidOption('onError', 'a function (error) => void', onError)
    }
    this.ttl = checkDelay(
      'ttl',
      options.ttl ?? 30_000,
      { min: 3000 },
      allowsShortDurations(options),
    )
    this.#store = store
    this.#hub = broadcaster
    this.#maxMembers = count('maxMembers', options.maxMembers, 1000)
    this.#maxConnections = count('maxConnections', options.maxConnections, 100_000)
    this.#eventsTopic = eventsTopic ?? ((topic) => `presence:${topic}`)
    this.#onError = onError ?? ((error) => console.error('oven-sse presence:', error))
    // Renewed three times a ttl: a renewal late by a whole third still lands in time.
    this.#timer = setInterval(() => void this.#heartbeat(), Math.max(1, Math.floor(this.ttl / 3)))
    // Presence must not keep a process alive that has nothing else to do.
    ;(this.#timer as { unref?: () => void }).unref?.()
  }

  /** The topic where `topic`'s join and leave events are published. */
  eventsTopic(topic: string): string {
    return this.#eventsTopic(topic)
  }

  /** How many connections this process has joined now. */
  get size(): number {
    return this.#joined.size
  }

  /**
   * Joins `member` to `topic` for one connection, and publishes a `join` event if it is the
   * member's first connection there (on any instance).
   *
   * @returns a function that leaves (also called when `signal` aborts).
   * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` for a bad topic, member or info;
   *   `ERR_SSE_PRESENCE_FULL` past `maxConnections`; `ERR_SSE_BROKER` when the store cannot be
   *   reached (the connection is then not counted).
   */
  async join(topic: string, member: string, options: JoinOptions = {}): Promise<LeavePresence> {
    checkOptionNames('Presence.join', options, JOIN_OPTIONS)
    checkId('topic', topic)
    checkId('member', member)
    const info = encodeInfo(options.info)
    const { signal } = options
    if (this.#closed) throw new SseError('ERR_SSE_BROKER', 'Presence is closed; cannot join.')
    if (this.#joined.size >= this.#maxConnections) {
      throw new SseError(
        'ERR_SSE_PRESENCE_FULL',
        `Presence: this process already holds ${this.#maxConnections} joined connections (maxConnections); ${JSON.stringify(member)} was not joined to ${JSON.stringify(topic)}.`,
      )
    }
    const connection = `${this.#instance}:${++this.#sequence}`
    const joined: Joined = { topic, member, info }
    // Counted before the store answers, so a heartbeat meanwhile renews it and a flood is bounded.
    this.#joined.set(connection, joined)
    let first: boolean
    try {
      first = await this.#store.join(topic, connection, member, info, this.ttl)
    } catch (error) {
      this.#joined.delete(connection)
      throw error
    }
    if (first) this.#announce({ action: 'join', topic, member, info: parseInfo(info) })
    let left: Promise<void> | undefined
    const leave: LeavePresence = () => {
      if (!left) {
        const leaving = this.#leave(connection).finally(() => this.#leaving.delete(leaving))
        this.#leaving.add(leaving)
        left = leaving
      }
      return left
    }
    if (signal?.aborted) await leave()
    else signal?.addEventListener('abort', () => void leave(), { once: true })
    return leave
  }

  /**
   * The topic's members over every instance: the exact total and up to `maxMembers` of them.
   * Expired entries are swept first, so a dead instance's members are gone once their ttl is.
   */
  async members(topic: string): Promise<PresenceList> {
    checkId('topic', topic)
    await this.#sweep()
    return this.#store.members(topic, this.#maxMembers)
  }

  /**
   * Leaves every connection this process joined (announcing the leaves), waits for leaves
   * under way, and closes the store. Later joins reject. Close it before the broadcaster, which
   * carries the announcements.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    await this.#beating
    await Promise.allSettled([
      ...this.#leaving,
      ...[...this.#joined.keys()].map((connection) => this.#leave(connection)),
    ])
    await this.#store.close()
  }

  async #leave(connection: string): Promise<void> {
    if (!this.#joined.delete(connection)) return
    try {
      const leave = await this.#store.leave(connection)
      if (leave) this.#announce({ action: 'leave', ...leave, reason: 'left' })
    } catch (error) {
      // The entry stays in the store until it expires; the sweep then announces the leave.
      this.#onError(error)
    }
  }

  #heartbeat(): Promise<void> {
    this.#beating ??= this.#beat().finally(() => {
      this.#beating = undefined
    })
    return this.#beating
  }

  async #beat(): Promise<void> {
    try {
      const connections = [...this.#joined.keys()]
      for (let from = 0; from < connections.length; from += RENEW_BATCH) {
        const lost = await this.#store.renew(connections.slice(from, from + RENEW_BATCH), this.ttl)
        for (const connection of lost) await this.#rejoin(connection)
      }
      await this.#sweep()
    } catch (error) {
      this.#onError(error)
    }
  }

  /** A connection swept while this process could not renew it (a long pause): back in. */
  async #rejoin(connection: string): Promise<void> {
    const joined = this.#joined.get(connection)
    if (!joined) return
    const { topic, member, info } = joined
    if (await this.#store.join(topic, connection, member, info, this.ttl)) {
      this.#announce({ action: 'join', topic, member, info: parseInfo(info) })
    }
  }

  async #sweep(): Promise<void> {
    for (let round = 0; round < SWEEP_ROUNDS; round++) {
      const { removed, leaves } = await this.#store.sweep(SWEEP_BATCH)
      for (const leave of leaves) this.#announce({ action: 'leave', ...leave, reason: 'expired' })
      if (removed < SWEEP_BATCH) return
    }
  }

  #announce(event: PresenceEvent): void {
    this.#hub
      ?.publish(this.#eventsTopic(event.topic), { event: 'presence', data: event })
      .catch(this.#onError)
  }
}

function parseInfo(info: string | undefined): unknown {
  return info === undefined ? undefined : JSON.parse(info)
}
