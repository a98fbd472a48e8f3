/**
 * Detached, resumable runs: a producer (an AI generation, a job's progress) started under an id,
 * apart from any HTTP connection, whose events any client on any instance can follow, resume,
 * and stop.
 *
 * A run is two topics of a {@link Broadcaster} that the {@link Runs} object owns, so it works in
 * memory and on Redis with the same code, and inherits resume, ordering, multi-instance delivery
 * and expiry (`historyTtl`) from it:
 *
 * - `run:<id>` — the run's output, in order, closed by one {@link END_EVENT}. Attaching is
 *   subscribing to it from the client's `Last-Event-ID` (or from the run's origin), and ending
 *   the stream after the end event.
 * - `run-control:<id>` — the run's life, read by every instance: `start` (its position is the
 *   run's *origin*: every output event comes after it), `stop` requests (the producing instance
 *   follows this topic and aborts its producer's signal), and `end` (the reason, and the id of
 *   the end event). Reading it (a handful of messages) answers "is there such a run, and in what
 *   state" on any instance, without any state outside the broker.
 *
 *
 * And one topic per producing instance, `runs-beat:<instance>`: its heartbeat, published every
 * third of `lease` while the instance produces a run, keeping only the newest (one publish per
 * instance, however many runs it produces). The `start` message names the instance. An attached
 * client that has seen neither an event of its run nor a new beat of that instance for a whole
 * `lease` ends the run as `'failed'` on the producer's behalf: an instance that died without a
 * goodbye never leaves its clients waiting for `ttl`. Liveness is judged by the beat's position
 * moving, not by clocks, so instances need not agree on the time.
 *
 * The topics expire like any topic: `ttl` after their last event, so a finished run is forgotten
 * `ttl` after it ended and an attach then gets the {@link END_EVENT} with reason `'unknown'`.
 *
 * The state of a local run moves one way, in one place (`#produce`): running, then done, failed
 * or stopped, published as the end event and then as the control topic's `end`.
 *
 * @module
 */

import { Broadcaster } from '../broadcast/broadcaster.ts'
import type { Broker } from '../broadcast/broker.ts'
import { formatEventId, parseEventId } from '../broadcast/event-id.ts'
import { MemoryBroker } from '../broadcast/memory-broker.ts'
import { type BroadcastItem, fromPayload } from '../broadcast/payload.ts'
import { RESET_EVENT } from '../broadcast/subscription.ts'
import { ServerSentEvent } from '../encoder/encode.ts'
import { checkOptionNames, describe, invalidOption, SseError } from '../errors.ts'
import { setDeadline } from '../util/deadline.ts'
import { allowsShortDurations, checkDelay, SHORT_DURATIONS } from '../util/delay.ts'

/** Waits `ms`, or less if `signal` aborts first. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => resolve(clearTimeout(timer)), { once: true })
  })
}

/**
 * The type of the last event of every run's stream: its data is JSON `{"reason": RunEndReason}`.
 * The stream ends cleanly after it; close the `EventSource` when it arrives (an `EventSource`
 * reconnects after any end, and the reconnect would only be told the same again).
 *
 * @example
 * ```ts
 * source.addEventListener('oven-end', (event) => {
 *   source.close()
 *   const { reason } = JSON.parse(event.data)
 *   if (reason !== 'done') showError(reason)
 * })
 * ```
 */
export const END_EVENT = 'oven-end'

/** Where a run is: producing, or finished in one of three ways. */
export type RunState = 'running' | 'done' | 'failed' | 'stopped'

/**
 * Why a run's stream ended, the `reason` of its {@link END_EVENT}:
 * - `'done'` — the producer finished;
 * - `'failed'` — the producer threw (or an item could not be published), or its instance stopped
 *   renewing its lease (died); the error went to the `onError` option, never to clients;
 * - `'stopped'` — `stop()` was called (on any instance), or `close()` on the producing one;
 * - `'unknown'` — there is no such run: never started, or finished more than `ttl` ago.
 */
export type RunEndReason = 'done' | 'failed' | 'stopped' | 'unknown'

/**
 * What a run produces: an async (or sync) iterable of broadcast items, or a function that takes
 * the run's abort signal and returns one (an `async function*`). The signal aborts on `stop()`
 * (reason `'stop'`) and on `close()` (reason `'shutdown'`).
 */
export type RunProducer =
  | AsyncIterable<BroadcastItem>
  | Iterable<BroadcastItem>
  | ((signal: AbortSignal) => AsyncIterable<BroadcastItem> | Iterable<BroadcastItem>)

/** Options of {@link Runs}. */
export interface RunsOptions {
  /**
   * Where runs live: in this process, or shared by several (`RedisBroker` from `oven-sse/redis`,
   * so a client attaches and stops on any instance). The `Runs` object owns it: `close()` closes
   * it. Give it a broker of its own (a broker serves one broadcaster).
   * @defaultValue a new `MemoryBroker`
   */
  broker?: Broker | undefined
  /**
   * How long (ms) each event of a run is kept, so how long a finished run can still be attached
   * to after its end. Make it longer than your longest run: an event older than `ttl` leaves
   * the history even while the run goes on, and a client resuming from before it receives the
   * `oven-reset` event. A whole number of ms, at least 1000 (tests go lower with
   * `shortDurations()` from `oven-sse/testing`).
   * @defaultValue `3600000` (an hour)
   */
  ttl?: number | undefined
  /**
   * The most events one run keeps (and replays to a client attaching from the start).
   * @defaultValue `10000`
   */
  history?: number | undefined
  /**
   * How long (ms) a running run may go without a sign of life (an event, or the heartbeat its
   * producing instance sends every third of `lease`) before its attached clients take its
   * instance for dead and end the run with reason `'failed'`. Clients then hear of it within one
   * to two `lease`s. A whole number of ms, at least 5000 (tests go lower with `shortDurations()`):
   * a producer cannot beat while its own connection to the broker is down, and node-redis waits up
   * to about 2.2 s between reconnection attempts, so a shorter lease would take a producer whose
   * connection is coming back after a Redis blip for dead.
   * @defaultValue `30000`
   */
  lease?: number | undefined
  /**
   * Receives what belongs to no caller: a producer's error (clients only see the reason
   * `'failed'`), an end that could not be published, a broker error.
   * @defaultValue logs with `console.error`
   */
  onError?: ((error: unknown) => void) | undefined
}

/** Options of {@link Runs.attach}. */
export interface AttachOptions {
  /** The client's `Last-Event-ID`: it receives only what followed. Omitted: the whole run. */
  lastEventId?: string | undefined
  /** Ends the stream when aborted (pass `ctx.signal`). */
  signal?: AbortSignal | undefined
  /** Ignored: accepted so that a stream context can be passed as the options. */
  request?: unknown
}

/** A run started by this process. */
export interface RunHandle {
  /** The run's id. */
  readonly id: string
  /** Settles with the run's final state once its end is published. Never rejects. */
  readonly finished: Promise<Exclude<RunState, 'running'>>
}

/** What the control topic tells about a run. */
interface Control {
  /** The id of the `start` message: attaching "from the start" resumes from there. */
  readonly origin: string
  /** The instance producing the run: whose heartbeat keeps it alive. */
  readonly instance: string
  readonly stopRequested: boolean
  /** Present once the run has finished. */
  readonly end?: { readonly reason: Exclude<RunState, 'running'>; readonly id: string }
}

interface LocalRun {
  readonly controller: AbortController
  finished?: Promise<Exclude<RunState, 'running'>>
}

const OPTIONS = ['broker', 'ttl', 'history', 'lease', 'onError']
const ATTACH_OPTIONS = ['lastEventId', 'signal', 'request']
const DEFAULT_TTL = 3_600_000
const DEFAULT_LEASE = 30_000
/**
 * The shortest `lease`: longer than node-redis's longest wait between reconnection attempts
 * (about 2.2 s) plus a heartbeat interval, so that a producer whose connection returns a moment
 * after Redis does is not taken for dead.
 */
const MIN_LEASE = 5000
const MAX_ID_LENGTH = 256
/** Control messages read at once: a start, an end, and a few stop requests that raced. */
const CONTROL_READ = 64

const runTopic = (id: string) => `run:${id}`
const controlTopic = (id: string) => `run-control:${id}`
const beatTopic = (instance: string) => `runs-beat:${instance}`

function checkId(id: unknown, where: string): string {
  if (typeof id !== 'string' || id === '' || id.length > MAX_ID_LENGTH || !id.isWellFormed()) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Invalid run id in ${where}: expected a non-empty string of at most ${MAX_ID_LENGTH} ` +
        `characters (well-formed Unicode), received ${describe(id)}.`,
    )
  }
  return id
}

function endEvent(reason: RunEndReason, id?: string): ServerSentEvent {
  return new ServerSentEvent({ event: END_EVENT, data: JSON.stringify({ reason }), id })
}

/**
 * Detached runs: producers started under an id, independent of any connection, whose events are
 * kept (for `ttl`) so that any client, on any instance sharing the broker, attaches with the run
 * id and its `Last-Event-ID` and receives exactly what it has not seen, then the live tail, then
 * the {@link END_EVENT}. See `docs/resumable.md`.
 *
 * @example
 * ```ts
 * import { EventSourceResponse, Runs } from 'oven-sse'
 *
 * const runs = new Runs()
 *
 * // POST /chat — start the generation; it goes on if the tab closes
 * app.post('/chat', async (c) => {
 *   const id = crypto.randomUUID()
 *   await runs.start(id, async function* (signal) {
 *     for await (const token of model.stream(await c.req.text(), { signal })) {
 *       yield { event: 'token', data: token }
 *     }
 *   })
 *   return c.json({ id })
 * })
 *
 * // GET /chat/:id — follow it; a reload resumes from Last-Event-ID
 * app.get('/chat/:id', (c) =>
 *   new EventSourceResponse((ctx) => runs.attach(c.req.param('id'), ctx), { request: c.req.raw }),
 * )
 *
 * // POST /chat/:id/stop — from any instance
 * app.post('/chat/:id/stop', async (c) => c.json({ stopped: await runs.stop(c.req.param('id')) }))
 * ```
 */
export class Runs {
  readonly #broker: Broker
  readonly #hub: Broadcaster
  readonly #onError: (error: unknown) => void
  readonly #ttl: number
  readonly #lease: number
  /** This instance's name on the beat topic. */
  readonly #instance = crypto.randomUUID()
  /** The heartbeat's timer, while this instance produces runs. */
  #beating: ReturnType<typeof setInterval> | undefined
  /** Runs produced by this process, by id, from `start()` until their end is published. */
  readonly #local = new Map<string, LocalRun>()
  #closed = false
  /** Aborts on `close()`: cuts short the waits between attempts to publish an end. */
  readonly #closing = new AbortController()

  /**
   * @param options - see {@link RunsOptions}.
   * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` for an unknown or invalid option.
   */
  constructor(options: RunsOptions = {}) {
    checkOptionNames('Runs', options, OPTIONS)
    const short = allowsShortDurations(options)
    const ttl =
      options.ttl === undefined ? DEFAULT_TTL : checkDelay('ttl', options.ttl, { min: 1000 }, short)
    this.#lease =
      options.lease === undefined
        ? DEFAULT_LEASE
        : checkDelay('lease', options.lease, { min: MIN_LEASE }, short)
    const history = options.history ?? 10_000
    if (typeof history !== 'number' || !Number.isSafeInteger(history) || history < 1) {
      invalidOption('history', 'an integer >= 1', history)
    }
    if (options.onError !== undefined && typeof options.onError !== 'function') {
      invalidOption('onError', 'a function', options.onError)
    }
    this.#onError = options.onError ?? ((error) => console.error('[oven-sse] runs error:', error))
    this.#ttl = ttl
    this.#broker = options.broker ?? new MemoryBroker()
    this.#hub = new Broadcaster({
      broker: this.#broker,
      history,
      historyTtl: ttl,
      maxResume: history,
      onError: this.#onError,
      ...(short ? { [SHORT_DURATIONS]: true } : {}),
    })
  }

  /**
   * Starts `producer` under `id`. Resolves once the run exists (an attach on any instance finds
   * it); the producer then runs in the background and each item it yields is published to the
   * run, whether or not anyone is attached.
   *
   * @param id - the run's id (at most 256 characters); unique among the runs not yet expired.
   * @param producer - see {@link RunProducer}.
   * @throws {@link SseError} `ERR_SSE_RUN_EXISTS` when a run with this id is running or has not
   *   expired; `ERR_SSE_INVALID_OPTION` for a bad id or producer; `ERR_SSE_BROKER` when the
   *   broker is unreachable or the `Runs` is closed.
   */
  async start(id: string, producer: RunProducer): Promise<RunHandle> {
    checkId(id, 'start()')
    const isIterable =
      typeof producer === 'object' &&
      producer !== null &&
      (Symbol.asyncIterator in producer || Symbol.iterator in producer)
    if (typeof producer !== 'function' && !isIterable) {
      invalidOption('producer', 'an (async) iterable or a function (signal) => iterable', producer)
    }
    if (this.#closed) throw new SseError('ERR_SSE_BROKER', 'Runs is closed; cannot start a run.')
    if (this.#local.has(id)) throw exists(id, 'running')
    // Claimed here before the first await, so two starts on this process cannot both pass.
    const local: LocalRun = { controller: new AbortController() }
    this.#local.set(id, local)
    let origin: string
    try {
      const control = await this.#readControl(id)
      if (control !== undefined) throw exists(id, control.end?.reason ?? 'running')
      // A beat comes before the start: whoever finds the run finds its instance alive.
      await this.#beat()
      origin = await this.#hub.publish(controlTopic(id), {
        event: 'start',
        data: JSON.stringify({ instance: this.#instance }),
      })
      // Two instances that started the same id at once both got here; the broker ordered their
      // starts, and the first one is the run.
      if ((await this.#readControl(id))?.origin !== origin) throw exists(id, 'running')
    } catch (error) {
      this.#local.delete(id)
      throw error
    }
    if (this.#beating === undefined) {
      this.#beating = setInterval(() => this.#beat().catch(() => {}), Math.ceil(this.#lease / 3))
      this.#beating.unref?.()
    }
    local.finished = this.#produce(id, origin, producer, local.controller)
    return { id, finished: local.finished }
  }

  /**
   * Follows run `id`: content for `EventSourceResponse` or `sendEventStream`. It yields what the
   * client has not seen (after `lastEventId`, or the whole run), then the live events, then the
   * {@link END_EVENT}, and ends. For a run that does not exist (never started, or expired) it
   * yields only the end event, with reason `'unknown'`; check {@link Runs.status} first to
   * answer 404 instead. A `lastEventId` that is not a position of this run's history (too old,
   * foreign) gets the `oven-reset` event first, as in `Broadcaster.subscribe`.
   *
   * @param id - the run's id.
   * @param options - `lastEventId`, `signal`; a stream context (`ctx`) works as is.
   * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` for a bad id or options.
   */
  attach(id: string, options: AttachOptions = {}): AsyncIterable<ServerSentEvent> {
    checkId(id, 'attach()')
    checkOptionNames('attach()', options, ATTACH_OPTIONS)
    const { lastEventId, signal } = options
    if (lastEventId !== undefined && typeof lastEventId !== 'string') {
      invalidOption('lastEventId', 'a string', lastEventId)
    }
    return this.#follow(id, lastEventId, signal)
  }

  /**
   * Asks run `id` to stop, on whichever instance produces it: its producer's signal aborts
   * (reason `'stop'`), and its clients receive the {@link END_EVENT} with reason `'stopped'`.
   *
   * @returns `true` when the run was running (its end follows), `false` when it had finished.
   * @throws {@link SseError} `ERR_SSE_RUN_NOT_FOUND` when there is no such run (or it expired).
   */
  async stop(id: string): Promise<boolean> {
    checkId(id, 'stop()')
    const local = this.#local.get(id)
    if (local !== undefined) {
      local.controller.abort('stop')
      return true
    }
    const control = await this.#readControl(id)
    if (control === undefined) throw notFound(id)
    if (control.end !== undefined) return false
    if (!control.stopRequested) await this.#hub.publish(controlTopic(id), { event: 'stop' })
    return true
  }

  /**
   * The state of run `id` as any instance sees it, or `undefined` when there is no such run
   * (never started, or expired): answer 404 before streaming.
   */
  async status(id: string): Promise<RunState | undefined> {
    checkId(id, 'status()')
    const control = await this.#readControl(id)
    if (control === undefined) return undefined
    return control.end?.reason ?? 'running'
  }

  /** How many runs this process is producing. */
  get running(): number {
    return this.#local.size
  }

  /**
   * Stops this process's runs (their signal aborts with reason `'shutdown'`; their clients get
   * the end event with reason `'stopped'`), waits for their ends to be published, then closes
   * the broadcaster and the broker. Attached streams end.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#closing.abort()
    const finishing: Array<Promise<unknown>> = []
    for (const local of this.#local.values()) {
      local.controller.abort('shutdown')
      if (local.finished) finishing.push(local.finished)
    }
    await Promise.all(finishing)
    await this.#hub.close()
  }

  // ---- the producing side -----------------------------------------------------------------

  /**
   * Renews the lease of this instance's runs: one message on its beat topic, which keeps only
   * the newest. A beat that fails (the broker is away) is not reported: the runs' events fail
   * too, and say so.
   */
  #beat(): Promise<unknown> {
    return this.#broker.publish(beatTopic(this.#instance), '', 1, this.#ttl)
  }

  /** The position of `instance`'s newest beat, `''` when there is none. */
  async #lastBeat(instance: string): Promise<string> {
    const read = await this.#broker.read([beatTopic(instance)], 0, 1)
    const beat = read.messages.at(-1)
    return beat === undefined ? '' : formatEventId(beat.epoch, beat.seq)
  }

  /** Runs the producer to its end and publishes the end. Never rejects. */
  async #produce(
    id: string,
    origin: string,
    producer: RunProducer,
    controller: AbortController,
  ): Promise<Exclude<RunState, 'running'>> {
    const { signal } = controller
    const watching = new AbortController()
    const watcher = this.#watchStops(id, origin, controller, watching.signal)
    const topic = runTopic(id)
    let state: Exclude<RunState, 'running'> = 'done'
    let iterator: Iterator<BroadcastItem> | AsyncIterator<BroadcastItem> | undefined
    try {
      const source = typeof producer === 'function' ? producer(signal) : producer
      iterator = iterate(source)
      // A stop ends the run at once, even if the producer ignores its signal: the pending
      // `next()` is raced against the abort, and nothing it yields afterwards is published.
      const stopped = new Promise<typeof STOPPED>((resolve) => {
        if (signal.aborted) resolve(STOPPED)
        else signal.addEventListener('abort', () => resolve(STOPPED), { once: true })
      })
      for (;;) {
        const next = Promise.resolve(iterator.next())
        const step = await Promise.race([next, stopped])
        if (step === STOPPED) {
          next.catch(() => {}) // settles later, or never: nobody reads it
          break
        }
        if (step.done || signal.aborted) break
        await this.#hub.publish(topic, step.value)
      }
      if (signal.aborted) state = 'stopped'
    } catch (error) {
      if (signal.aborted) state = 'stopped'
      else {
        state = 'failed'
        this.#onError(error)
      }
    }
    if (state !== 'done' && iterator?.return) {
      // Lets the producer's `finally` run; not awaited: a producer stuck in an await would hold
      // the end for ever.
      Promise.resolve()
        .then(() => iterator.return?.())
        .catch(() => {})
    }
    watching.abort()
    // The end must reach the broker, or the run would read as running (its instance beats on)
    // until it expires: a failed publish (the broker away) is tried again every third of a
    // lease, until it succeeds, the run would have expired anyway, or `close()`.
    const giveUp = Date.now() + this.#ttl
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#publishEnd(id, state)
        break
      } catch (error) {
        if (attempt === 0) this.#onError(error)
        if (this.#closed || Date.now() >= giveUp) break
        await delay(Math.ceil(this.#lease / 3), this.#closing.signal)
      }
    }
    await watcher
    this.#local.delete(id)
    if (this.#local.size === 0) {
      clearInterval(this.#beating)
      this.#beating = undefined
    }
    return state
  }

  /** Publishes run `id`'s end: the end event to its clients, then the end on its control. */
  async #publishEnd(id: string, reason: Exclude<RunState, 'running'>): Promise<void> {
    const endId = await this.#hub.publish(runTopic(id), {
      event: END_EVENT,
      data: JSON.stringify({ reason }),
    })
    await this.#hub.publish(controlTopic(id), {
      event: 'end',
      data: JSON.stringify({ reason, id: endId }),
    })
  }

  /** Follows the control topic from the run's origin and aborts the producer on a stop. */
  async #watchStops(
    id: string,
    origin: string,
    controller: AbortController,
    signal: AbortSignal,
  ): Promise<void> {
    try {
      const control = this.#hub.subscribe(controlTopic(id), { lastEventId: origin, signal })
      for await (const event of control) {
        if (event.event === 'stop') {
          controller.abort('stop')
          return
        }
      }
    } catch (error) {
      if (!signal.aborted) this.#onError(error)
    }
  }

  // ---- the attaching side -----------------------------------------------------------------

  async *#follow(
    id: string,
    lastEventId: string | undefined,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<ServerSentEvent> {
    const control = await this.#readControl(id)
    if (control === undefined) {
      yield endEvent('unknown')
      return
    }
    // A client that already has the end (an EventSource that reconnected instead of closing)
    // would wait for ever on a subscription: tell it again, without an id.
    if (control.end !== undefined && lastEventId !== undefined) {
      const seen = parseEventId(lastEventId)
      const end = parseEventId(control.end.id)
      if (seen && end && seen.epoch === end.epoch && seen.seq >= end.seq) {
        yield endEvent(control.end.reason)
        return
      }
    }
    const subscription = this.#hub.subscribe(runTopic(id), {
      lastEventId: lastEventId ?? control.origin,
      signal,
    })
    const events = subscription[Symbol.asyncIterator]()
    const { instance } = control
    let beat = await this.#lastBeat(instance)
    try {
      for (;;) {
        const next = events.next()
        let step = await quietFor(next, this.#lease)
        // A whole lease without an event: unless the producer's beat moved meanwhile, its
        // instance is gone, and the end published here reaches this client like any event.
        while (step === QUIET) {
          beat = await this.#checkLease(id, instance, beat)
          step = await quietFor(next, this.#lease)
        }
        if (step.done) return
        const event = step.value
        yield event
        if (event.event === END_EVENT) return
        if (event.event === RESET_EVENT) {
          // Only live events follow a reset: if the run has already ended, none will come.
          // Ended, or expired meanwhile (no end will be published): end here.
          const now = await this.#readControl(id)
          if (now === undefined || now.end !== undefined) {
            yield endEvent(now?.end?.reason ?? 'unknown')
            return
          }
        }
      }
    } finally {
      await events.return?.()
    }
  }

  /**
   * Ends run `id` if the beat of `instance`, its producer, is still `beat` a lease after it was
   * read, and returns the beat read now. When the broker cannot be read, nothing is judged: the
   * next check starts afresh.
   */
  async #checkLease(id: string, instance: string, beat: string): Promise<string> {
    try {
      const now = await this.#lastBeat(instance)
      if (now === beat && instance !== this.#instance) await this.#abandon(id)
      return now
    } catch (error) {
      this.#onError(error)
      return UNREAD
    }
  }

  /**
   * Ends run `id` as `'failed'` for a producer whose instance stopped renewing its lease,
   * unless its end has been published meanwhile. Two clients that give up on it at once may
   * both publish an end: each client stops at the first, and the last is the run's state.
   */
  async #abandon(id: string): Promise<void> {
    const control = await this.#readControl(id)
    if (control === undefined || control.end !== undefined) return
    this.#onError(
      new SseError(
        'ERR_SSE_RUN_ABANDONED',
        `Run ${describe(id)}: its producer sent no event and no heartbeat for ${this.#lease} ms ` +
          '(the lease option), so its instance is taken for dead; its clients are told it failed.',
      ),
    )
    await this.#publishEnd(id, 'failed')
  }

  /** What the control topic says about run `id`; `undefined`: no such run. */
  async #readControl(id: string): Promise<Control | undefined> {
    const read = await this.#broker.read([controlTopic(id)], 0, CONTROL_READ)
    let origin: string | undefined
    let instance = ''
    let stopRequested = false
    let end: Control['end']
    for (const message of read.messages) {
      const messageId = formatEventId(message.epoch, message.seq)
      const event = fromPayload(message.payload, messageId)
      if (event.event === 'start' && origin === undefined) {
        origin = messageId
        instance = (JSON.parse(event.data ?? '{}') as { instance?: string }).instance ?? ''
      } else if (event.event === 'stop') stopRequested = true
      else if (event.event === 'end' && event.data !== undefined) {
        end = JSON.parse(event.data) as NonNullable<Control['end']>
      }
    }
    if (origin === undefined) return undefined
    return end === undefined
      ? { origin, instance, stopRequested }
      : { origin, instance, stopRequested, end }
  }
}

const STOPPED: unique symbol = Symbol('stopped')
const QUIET: unique symbol = Symbol('quiet')
/** A beat position no read returns: a lease check that could not read compares unequal. */
const UNREAD = 'unread'

/**
 * `next`'s result, or {@link QUIET} if it has not settled within `ms` (judged after the I/O
 * already received: an event that arrived while the loop was held still counts).
 */
function quietFor<T>(next: Promise<T>, ms: number): Promise<T | typeof QUIET> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const quiet = new Promise<typeof QUIET>((resolve) => {
    timer = setDeadline(resolve, ms, QUIET)
  })
  return Promise.race([next, quiet]).finally(() => clearTimeout(timer))
}

/** The iterator of an async or sync iterable. */
function iterate(
  source: AsyncIterable<BroadcastItem> | Iterable<BroadcastItem>,
): Iterator<BroadcastItem> | AsyncIterator<BroadcastItem> {
  if (typeof source === 'object' && source !== null) {
    if (Symbol.asyncIterator in source) return source[Symbol.asyncIterator]()
    if (Symbol.iterator in source) return source[Symbol.iterator]()
  }
  throw new SseError(
    'ERR_SSE_INVALID_CONTENT',
    `Invalid run producer result: expected an (async) iterable, received ${describe(source)}.`,
  )
}

function exists(id: string, state: RunState): SseError {
  return new SseError(
    'ERR_SSE_RUN_EXISTS',
    `Cannot start run ${describe(id)}: a run with this id is ${state === 'running' ? 'running' : `finished (${state}) and not expired yet`}. Run ids must be unique until their run expires (the ttl option).`,
  )
}

function notFound(id: string): SseError {
  return new SseError(
    'ERR_SSE_RUN_NOT_FOUND',
    `No run ${describe(id)}: it was never started, or it finished more than ttl ms ago.`,
  )
}
