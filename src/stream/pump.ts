/**
 * The pump: one implementation of a live stream, shared by every transport.
 *
 * It pulls the source only while the sink can take more (backpressure), batches the encoded
 * events produced in one burst into one write (text, or bytes for a broadcaster's events, which
 * are encoded once for all their streams), pings after idle time, drops a client
 * that stops reading (`sendTimeout`), takes part in shutdown, and ends exactly once with a
 * reason, clearing every timer and listener it made.
 *
 * ## Memory layout (read this before the fields)
 *
 * A server holds one pump per open connection, and most connections are idle (a tab waiting
 * for the next event), so an idle pump is kept small. Measured with the `idle` scenario of
 * `npm run bench` (heap and RSS per connection against a plain `res.write` loop, 10 000
 * connections), each of these bought a tenth of a KiB or more per stream:
 *
 * - **State as bits.** The stream's {@link State} and six boolean conditions ({@link Flag}) share
 *   one small integer, `#flags`, read through `#state` and `flags & Flag.X`.
 * - **One field per phase, not one per value.** `#source` holds the content as given until it is
 *   opened, then the promise of the source while a content function runs, then the source's
 *   {@link Puller}. Read it only through the accessor of the phase: `#content`, `#opening`,
 *   `#puller`.
 * - **`#abort` is a reason or a controller.** Until someone reads `ctx.signal`, the reason the
 *   stream aborted, if it has; after, the `AbortController` of that signal. Read it only
 *   through `contextSignal()`, `#abortWith()` and `#abortReason()`.
 * - **Made on first use:** the context (`context.ts`), and {@link RareState} (timers and the
 *   error of streams that need them, and the stream's {@link StreamInfo} while someone observes
 *   it on `node:diagnostics_channel`).
 * - **Observed only when subscribed:** each lifecycle message (`diagnostics/channels.ts`) is
 *   built behind its channel's `hasSubscribers`, so an unobserved stream carries no field and
 *   allocates nothing for it.
 * - **No closures per stream:** the source answers through the {@link Receiver} methods, and
 *   timers call static functions with the pump as argument.
 *
 * Everything below the fields reads as if they were plain.
 *
 * @internal
 * @module
 */

import {
  now,
  publishTimes,
  type StreamInfo,
  sendTimeout as sendTimeoutChannel,
  streamClose,
  streamError,
  streamEvent,
  streamOpen,
  streamWrite,
  utf8Length,
} from '../diagnostics/channels.ts'
import {
  type EventInit,
  encodeData,
  encodeEventObject,
  ServerSentEvent,
  unreadableEvent,
} from '../encoder/encode.ts'
import { describe, SseError } from '../errors.ts'
import type { ShutdownTarget } from '../shutdown/registry.ts'
import { setDeadline } from '../util/deadline.ts'
import { unref } from '../util/delay.ts'
import { ByteBatch } from './byte-batch.ts'
import { PumpContext } from './context.ts'
import { clock, type KeepAlive, keepAlive } from './keepalive.ts'
import type { ResolvedOptions } from './options.ts'
import { scheduleAfterBurst } from './schedule.ts'
import { isThenable, openContent, type Puller, pullInto, type Receiver } from './source.ts'
import type { CloseReason, Content, StreamContext } from './types.ts'

/**
 * The contract between the pump and a transport. Everything framework- or runtime-specific
 * lives behind it. The transport tells the pump when the sink can take more again
 * ({@link Pump.drained}) and when the client went away ({@link Pump.disconnect}).
 */
export interface Sink {
  /**
   * Writes a chunk. Returns `false` when the client is not keeping up: the pump then writes
   * nothing more until the transport calls {@link Pump.drained}.
   *
   * `shared`: the bytes are a broadcast event's own, written to other streams too. Nothing may
   * change them; a sink whose chunks reach user code (a web stream's reader) copies them.
   */
  write(chunk: string | Uint8Array, shared: boolean): boolean
  /** Ends the response cleanly: on HTTP/1.1, the final chunk. */
  end(): void
  /** Tears the connection down without a clean end (send timeout, client already gone). */
  destroy(): void
}

/** What a transport gives the pump to start one stream. */
export interface PumpInit<Req> {
  content: Content<Req>
  options: ResolvedOptions<Req>
  request: Req
  lastEventId: string | undefined
}

/**
 * Encoded events are gathered and written in one go once this much is pending (characters of
 * text, bytes of a broadcaster's events), or when the source pauses (a macrotask later),
 * whichever comes first. Measured: writing each 64-byte event on its own costs more CPU in the
 * transport than encoding it; and with 4 KiB events (one client, `npm run bench`, 9 runs) a
 * 16 KiB batch reached 0.68x the events/s of a loop writing pre-encoded frames, 32 KiB 0.89x,
 * 64 KiB 0.96x. 64 KiB is also Node's own stream buffer size since Node 22.
 *
 * @internal
 */
export const BATCH_CHARS = 64 * 1024

/** A batch for bytes, holding the text pending so far. */
function toBatch(text: string): ByteBatch {
  const batch = new ByteBatch()
  if (text !== '') batch.add(text)
  return batch
}

/**
 * The comment every stream starts with, written as soon as it opens (with the head). Clients
 * ignore comments; its only job is to be the first body byte.
 */
export const OPENING = ': ok'

function isAbortLike(error: unknown, reason: unknown): boolean {
  return error === reason || (error as Error | undefined)?.name === 'AbortError'
}

/** The default error report: a stream's failure must never go unseen. */
function logError(error: unknown): void {
  console.error('[oven-sse] a stream ended with an error:', error)
}

/** Life of a stream: made, streaming, ended. Kept in the low two bits of the pump's flags. */
const State = { Idle: 0, Running: 1, Closed: 2 } as const
type State = (typeof State)[keyof typeof State]
const STATE_BITS = 3

/**
 * Conditions of a stream, as bits of one small integer with its {@link State}: six boolean
 * fields would cost 48 bytes per stream, one integer costs 8.
 */
const Flag = {
  /** The content was opened: the source field holds the source, or the promise of it. */
  Opened: 4,
  /** The source finished or was stopped: never pull or stop it again. */
  SourceDone: 8,
  /** Shutdown began: the stream ends after its grace. */
  ShuttingDown: 16,
  /** A write of the pending output is scheduled for the end of this burst. */
  FlushScheduled: 32,
  /** The sink refused a write: wait for `drained()`. */
  Blocked: 64,
  /** A pull is pending: the source will call `receive()`. */
  Waiting: 128,
} as const

/** What only some streams need: made on first use, so an idle stream does not carry it. */
class RareState {
  /** The error that ended the stream, if one did. */
  failure: unknown = undefined
  sendTimer: ReturnType<typeof setTimeout> | undefined = undefined
  /** When the sink last refused a write (`clock()`), for the send timeout. */
  blockedSince = 0
  graceTimer: ReturnType<typeof setTimeout> | undefined = undefined
  /** Ends the stream after `maxDuration`. */
  lifeTimer: ReturnType<typeof setTimeout> | undefined = undefined
  /** The stream in diagnostics messages: made when the first one is published. */
  info: Observed | undefined = undefined
  /** Gives back what the stream holds (a connection-limit slot) when it ends. */
  release: (() => void) | undefined = undefined
}

/** A stream as diagnostics messages show it; see {@link StreamInfo}. */
class Observed implements StreamInfo {
  openedAt: number | undefined = undefined
  constructor(readonly request: unknown) {}
}

/**
 * The reconnection hint sent before a `maxDuration` end when the stream has no `retry` option:
 * the cut is planned, so the client comes back soon (browsers otherwise wait 3-5 s).
 */
export const MAX_DURATION_RETRY = 1000

/**
 * One live stream.
 *
 * It reads its source through callbacks ({@link Receiver}), not an `async` loop: a stream
 * waiting on an idle source then holds no suspended frame and no promise. Measured with heap
 * snapshots of 10 000 idle streams, the async loop and its pending promises were ~0.5 KiB per
 * stream.
 */
export class Pump<Req> implements ShutdownTarget, Receiver, KeepAlive {
  /** @internal Maintained by the keep-alive scheduler. */
  keepAliveSlot = -1
  readonly #options: ResolvedOptions<Req>
  /** The content, then the promise of the source, then the source: see the module comment. */
  #source: Content<Req> | Promise<Puller> | Puller
  readonly #request: Req
  readonly #lastEventId: string | undefined
  /** Made on first use (a content function, a `dataSender`, the transport). */
  #ctx: PumpContext<Req> | undefined
  /** The reason the stream aborted, or `ctx.signal`'s controller: see the module comment. */
  #abort: AbortController | CloseReason | undefined
  /** Settles the transport's `closed` promise. */
  readonly #settle: (outcome: CloseReason | Promise<never>) => void
  /** The {@link State} and the {@link Flag} bits. */
  #flags: number = State.Idle
  #sink: Sink | undefined
  /** Output not yet written: text, or a {@link ByteBatch} once a shared event's bytes join. */
  #pending: string | ByteBatch = ''
  /** When the stream last wrote, on the keep-alive clock. */
  #lastWrite = 0
  #rare: RareState | undefined

  /**
   * @param init - what to stream, with which options, for which request.
   * @param settle - called once when the stream has ended: with the reason, or with a rejected
   *   promise (see {@link Pump.failOpen}). The transport makes the `closed` promise it settles:
   *   the pump itself keeps no promise.
   */
  constructor(init: PumpInit<Req>, settle: (outcome: CloseReason | Promise<never>) => void) {
    this.#options = init.options
    this.#source = init.content
    this.#request = init.request
    this.#lastEventId = init.lastEventId
    this.#settle = settle
  }

  get #state(): State {
    return (this.#flags & STATE_BITS) as State
  }

  set #state(state: State) {
    this.#flags = (this.#flags & ~STATE_BITS) | state
  }

  // The phases of `#source` (see the module comment); each accessor is read only in its phase.

  /** Before {@link Flag.Opened}: the content as given. */
  get #content(): Content<Req> {
    return this.#source as Content<Req>
  }

  /** Opened, while a content function runs: the promise of the source. */
  get #opening(): Promise<Puller> | undefined {
    return this.#source instanceof Promise ? this.#source : undefined
  }

  /** Opened and ready (`#sourceReady()`): the source. */
  get #puller(): Puller {
    return this.#source as Puller
  }

  /** The context the source and `dataSender` see. */
  get context(): StreamContext<Req> {
    this.#ctx ??= new PumpContext(this, this.#lastEventId, this.#request)
    return this.#ctx
  }

  /** Whether the stream has ended. */
  get ended(): boolean {
    return this.#state === State.Closed
  }

  /**
   * Resolves the content into a source (calling a content function). Rejects with what the
   * function threw; the stream is then left for the caller to end.
   */
  open(): Promise<Puller> {
    if (this.#flags & Flag.Opened) return this.#opening ?? Promise.resolve(this.#puller)
    const content = this.#content
    this.#flags |= Flag.Opened
    // A stream belongs to the registry from the moment its content is opened, so `closeAll`
    // reaches a content function that is still running (awaiting a query with `ctx.signal`).
    // One that has ended already (its client left before the transport was called) must not
    // join: it would never leave, and `closeAll` would wait for it for ever.
    if (this.#state === State.Closed || !this.#options.registry.add(this)) {
      // Ended, or the server is shutting down: the content is never run.
      this.#finish('shutdown')
      const refused = Promise.reject(this.#abortReason())
      this.#source = refused
      return refused
    }
    const ctx = typeof content === 'function' ? this.context : undefined
    const opening = openContent(content, ctx, this).then((source) => {
      this.#source = source
      // The client may have gone while the function ran: stop the new source at once.
      if (this.#state === State.Closed) this.#stopSource()
      return source
    })
    this.#source = opening
    return opening
  }

  /** Whether the source is ready to pull (opened, and no content function still running). */
  #sourceReady(): boolean {
    return (this.#flags & Flag.Opened) !== 0 && this.#opening === undefined
  }

  /** Starts streaming into `sink`, after the response head has been sent. */
  start(sink: Sink): void {
    if (this.#state !== State.Idle) return
    this.#sink = sink
    this.#state = State.Running
    if (streamClose.hasSubscribers) this.#observed.openedAt = now()
    if (streamOpen.hasSubscribers) streamOpen.publish({ stream: this.#observed })
    // Counted from the head, which is when a platform's own limit is nearest.
    const { maxDuration } = this.#options
    if (maxDuration > 0) {
      const rare = (this.#rare ??= new RareState())
      rare.lifeTimer = setTimeout(Pump.#onMaxDuration, maxDuration, this)
      unref(rare.lifeTimer)
    }
    if (this.#sourceReady()) {
      this.#begin()
      return
    }
    this.open().then(
      () => this.#begin(),
      (error: unknown) => this.#fail(error),
    )
  }

  #begin(): void {
    if (this.ended) return
    const { retry, ping, dataSender, sep } = this.#options
    this.#lastWrite = clock()
    // The opening frame, with the head: a quiet source still opens at once. Some servers (Bun)
    // send the head only with the first body byte, and a client sees `open` only with the head.
    this.#push(`${OPENING}${sep}${sep}`)
    if (retry !== undefined) this.#push(`retry: ${retry}${sep}${sep}`)
    if (ping > 0) keepAlive.add(this, this.#lastWrite + ping)
    if (dataSender) this.#startDataSender(dataSender)
    this.#pull()
  }

  /** The transport saw the client go away. */
  disconnect(): void {
    this.#finish('disconnect')
  }

  /** The sink can take more again after refusing a write. */
  drained(): void {
    if (!(this.#flags & Flag.Blocked)) return
    this.#flags &= ~Flag.Blocked
    const rare = this.#rare
    if (rare?.sendTimer !== undefined) {
      clearTimeout(rare.sendTimer)
      rare.sendTimer = undefined
    }
    if (!(this.#flags & Flag.Waiting)) this.#pull()
  }

  /** Called by the registry: abort the source with reason `shutdown`, then end after grace. */
  beginShutdown(grace: number): void {
    if (this.#state === State.Closed || this.#flags & Flag.ShuttingDown) return
    this.#flags |= Flag.ShuttingDown
    const ownGrace = this.#options.shutdownGrace ?? grace
    this.#callHook(this.#options.onShutdown)
    this.#abortWith('shutdown')
    if (this.#state !== State.Running || ownGrace <= 0 || this.#flags & Flag.SourceDone) {
      this.#finish('shutdown')
      return
    }
    const rare = (this.#rare ??= new RareState())
    rare.graceTimer = setTimeout(Pump.#onGraceOver, ownGrace, this)
    unref(rare.graceTimer)
  }

  static #onGraceOver<R>(pump: Pump<R>): void {
    pump.#finish('shutdown')
  }

  /**
   * `maxDuration` is over: a reconnection hint, then a clean end. What the source has produced
   * goes out first (`#finish` writes it), so a client resuming with `Last-Event-ID` neither
   * misses nor repeats an event.
   */
  static #onMaxDuration<R>(pump: Pump<R>): void {
    pump.#rare!.lifeTimer = undefined
    if (pump.#state !== State.Running) return
    const { retry, sep } = pump.#options
    pump.#push(`retry: ${retry ?? MAX_DURATION_RETRY}${sep}${sep}`)
    pump.#finish('maxDuration')
  }

  /**
   * Drops the client at once (reason `timeout`, connection closed): for a source that learns
   * its client has fallen too far behind; see `takeClientDropper` in `source.ts`.
   */
  dropClient(): void {
    this.#finish('timeout')
  }

  /**
   * Calls `release` once, when the stream ends (at once if it has), before `onClose` runs: for a
   * connection-limit slot, so `onClose` and `closed` already see it given back.
   */
  releaseOnEnd(release: () => void): void {
    if (this.#state === State.Closed) {
      release()
      return
    }
    ;(this.#rare ??= new RareState()).release = release
  }

  /** Ends the stream with `reason`, reporting nothing (the caller handles any error). */
  close(reason: CloseReason): void {
    this.#finish(reason)
  }

  /**
   * Ends a stream whose content function threw before anything was sent: `closed` rejects
   * with `error`, so the transport's caller (a framework's error handling) answers instead.
   * `onClose` sees reason `error`.
   */
  failOpen(error: unknown): void {
    // Ended meanwhile (shutdown, disconnect): the failure is the source unwinding from the
    // abort, or else reported; `closed` has settled already.
    if (this.#state === State.Closed) this.#fail(error)
    else this.#finish('error', { error })
  }

  // ---- reading the source -----------------------------------------------------------------

  /** Pulls while the source answers at once and the sink takes more. */
  #pull(): void {
    const source = this.#puller
    while (this.#state === State.Running && !(this.#flags & (Flag.Blocked | Flag.Waiting))) {
      let result: IteratorResult<unknown> | undefined
      try {
        result = source[pullInto](this)
      } catch (error) {
        this.#fail(error)
        return
      }
      if (result === undefined) {
        this.#flags |= Flag.Waiting
        return
      }
      this.#onResult(result)
    }
  }

  /**
   * The result of a pending pull (from the source).
   *
   * @internal
   */
  receive(result: IteratorResult<unknown>): void {
    this.#flags &= ~Flag.Waiting
    if (this.#state !== State.Running) return
    this.#onResult(result)
    this.#pull()
  }

  /**
   * A pending pull failed (from the source).
   *
   * @internal
   */
  receiveError(error: unknown): void {
    this.#flags &= ~Flag.Waiting
    this.#fail(error)
  }

  /** Sends one result of the source, or ends the stream when the source is done. */
  #onResult(result: IteratorResult<unknown>): void {
    if (result.done) {
      this.#flags |= Flag.SourceDone
      this.#finish(this.#flags & Flag.ShuttingDown ? 'shutdown' : 'done')
      return
    }
    const item = result.value
    let thenable: boolean
    try {
      thenable = isThenable(item)
    } catch (error) {
      // Reading `then` ran user code (a getter, a Proxy trap) that threw: this item's error.
      this.#fail(unreadableEvent(error))
      return
    }
    // A sync iterable may yield promises, as in `for await`.
    if (thenable) {
      this.#flags |= Flag.Waiting
      ;(item as PromiseLike<unknown>).then(
        (value) => this.receive({ done: false, value }),
        (error: unknown) => this.receiveError(error),
      )
      return
    }
    try {
      this.#emit(item)
    } catch (error) {
      this.#fail(error)
      return
    }
    if (streamEvent.hasSubscribers) {
      const publishedAt =
        typeof item === 'object' && item !== null ? publishTimes.get(item) : undefined
      streamEvent.publish({ stream: this.#observed, item, publishedAt })
    }
  }

  /** This stream in diagnostics messages; made (with its `RareState`) on first use. */
  get #observed(): Observed {
    const rare = (this.#rare ??= new RareState())
    rare.info ??= new Observed(this.#request)
    return rare.info
  }

  /**
   * `ctx.signal`, made on first use.
   *
   * @internal
   */
  contextSignal(): AbortSignal {
    const known = this.#abort
    if (typeof known === 'object') return known.signal
    const controller = new AbortController()
    if (known !== undefined) controller.abort(known)
    this.#abort = controller
    return controller.signal
  }

  /**
   * Aborts `ctx.signal` with `reason` and tells the context's stream-end listeners, unless it
   * aborted already (the first reason stays).
   */
  #abortWith(reason: CloseReason): void {
    const known = this.#abort
    if (known === undefined) this.#abort = reason
    else if (typeof known === 'object' && !known.signal.aborted) known.abort(reason)
    else return
    this.#ctx?.streamEnded()
  }

  /**
   * Whether the stream has stopped wanting items.
   *
   * @internal
   */
  streamAborted(): boolean {
    const known = this.#abort
    return typeof known === 'object' ? known.signal.aborted : known !== undefined
  }

  /** Why the stream aborted (`ctx.signal.reason`), made signal or not. */
  #abortReason(): unknown {
    const known = this.#abort
    return typeof known === 'object' ? known.signal.reason : known
  }

  // ---- writing ----------------------------------------------------------------------------

  #emit(item: unknown): void {
    const { sep, serialize } = this.#options
    if (typeof item === 'string') {
      this.#push(encodeData(item, sep))
    } else if (item instanceof ServerSentEvent) {
      // A broadcaster's event: its bytes are encoded once for every stream that sends it.
      if (item.shared) this.#push(item.bytes(sep))
      else this.#push(item.encode(sep))
    } else if (item instanceof Uint8Array) {
      this.#flush()
      this.#write(item, false)
    } else if (typeof item === 'object' && item !== null) {
      this.#push(encodeEventObject(item as EventInit, sep, serialize))
    } else {
      throw new SseError(
        'ERR_SSE_INVALID_EVENT',
        'Invalid content item: expected a string, an event object, a ServerSentEvent or a ' +
          `Uint8Array, received ${describe(item)}.`,
      )
    }
  }

  /** Queues encoded output; it goes out at the end of this burst or when the batch is full. */
  #push(chunk: string | Uint8Array): void {
    const pending = this.#pending
    let size: number
    if (typeof pending === 'string' && typeof chunk === 'string') {
      this.#pending = pending + chunk
      size = pending.length + chunk.length
    } else {
      const batch = typeof pending === 'string' ? toBatch(pending) : pending
      batch.add(chunk)
      this.#pending = batch
      size = batch.size
    }
    if (size >= BATCH_CHARS) {
      this.#flush()
    } else if (!(this.#flags & Flag.FlushScheduled)) {
      this.#flags |= Flag.FlushScheduled
      scheduleAfterBurst(Pump.#scheduledFlush, this)
    }
  }

  static #scheduledFlush<R>(pump: Pump<R>): void {
    pump.#flags &= ~Flag.FlushScheduled
    if (pump.#state === State.Running) pump.#flush()
  }

  #flush(): void {
    const pending = this.#pending
    if (pending === '') return
    this.#pending = ''
    if (typeof pending === 'string') this.#write(pending, false)
    else this.#write(pending.toBytes(), pending.shared)
  }

  #write(chunk: string | Uint8Array, shared: boolean): void {
    this.#lastWrite = clock()
    if (streamWrite.hasSubscribers) this.#publishWrite(chunk)
    if (!this.#sink!.write(chunk, shared)) this.#onBlocked()
  }

  #publishWrite(chunk: string | Uint8Array): void {
    const bytes = typeof chunk === 'string' ? utf8Length(chunk) : chunk.byteLength
    streamWrite.publish({ stream: this.#observed, bytes })
  }

  #onBlocked(): void {
    if (this.#flags & Flag.Blocked) return
    this.#flags |= Flag.Blocked
    const { sendTimeout } = this.#options
    if (sendTimeout > 0) {
      const rare = (this.#rare ??= new RareState())
      rare.blockedSince = clock()
      // Judged after the I/O already received, so a client that drained while the event loop
      // was held is not dropped (util/deadline.ts).
      rare.sendTimer = setDeadline(Pump.#onSendTimeout, sendTimeout, this)
      unref(rare.sendTimer)
    }
  }

  static #onSendTimeout<R>(pump: Pump<R>): void {
    const rare = pump.#rare!
    if (!(pump.#flags & Flag.Blocked) || pump.#state !== State.Running) return
    // The judgement of an earlier block, which drained and blocked again since: the new one has
    // its own timer.
    if (clock() - rare.blockedSince < pump.#options.sendTimeout - 1) return
    rare.sendTimer = undefined
    if (sendTimeoutChannel.hasSubscribers) {
      sendTimeoutChannel.publish({
        stream: pump.#observed,
        sendTimeout: pump.#options.sendTimeout,
      })
    }
    pump.#finish('timeout')
  }

  // ---- keep-alive -------------------------------------------------------------------------

  // Idle-aware: a ping goes out only after `ping` ms without any write, so a busy stream pays
  // nothing for it. When the stream wrote meanwhile, it is rescheduled for the remaining time.
  /** @internal Called by the keep-alive scheduler. */
  keepAliveDue(now: number): void {
    if (this.#state !== State.Running) return
    const interval = this.#options.ping
    const idleSince = now - this.#lastWrite
    if (idleSince + 1 < interval) {
      keepAlive.add(this, this.#lastWrite + interval)
      return
    }
    if (!(this.#flags & Flag.Blocked)) {
      try {
        this.#sendPing()
      } catch (error) {
        this.#fail(error)
        return
      }
      if (this.#state !== State.Running) return
    }
    keepAlive.add(this, now + interval)
  }

  #sendPing(): void {
    const { pingMessage, sep } = this.#options
    if (pingMessage) {
      this.#emit(pingMessage())
    } else {
      this.#push(`: ping - ${new Date().toISOString()}${sep}${sep}`)
    }
    this.#flush()
  }

  // ---- hooks and errors -------------------------------------------------------------------

  #startDataSender(dataSender: (ctx: StreamContext<Req>) => unknown): void {
    let result: unknown
    try {
      result = dataSender(this.context)
    } catch (error) {
      this.#fail(error)
      return
    }
    if (isThenable(result)) {
      result.then(undefined, (error: unknown) => this.#fail(error))
    }
  }

  #fail(error: unknown): void {
    if (this.#state === State.Closed) {
      // A source or producer unwinding after the end throws our abort reason: expected. And an
      // errored ReadableStream's cancel() rejects with the error that ended the stream: it was
      // reported already, once is enough.
      if (!isAbortLike(error, this.#abortReason()) && error !== this.#rare?.failure) {
        this.report(error)
      }
      return
    }
    ;(this.#rare ??= new RareState()).failure = error
    this.report(error)
    this.#finish('error')
  }

  /** Reports `error` through `onError` (or the default log); a throwing hook is logged too. */
  report(error: unknown): void {
    const { onError } = this.#options
    if (!onError) {
      logError(error)
      return
    }
    try {
      onError(error, this.#request)
    } catch (hookError) {
      logError(hookError)
      logError(error)
    }
  }

  #callHook(hook: (() => void) | undefined): void {
    if (!hook) return
    try {
      hook()
    } catch (error) {
      this.report(error)
    }
  }

  // ---- the end ----------------------------------------------------------------------------

  #stopSource(): void {
    if (!this.#sourceReady() || this.#flags & Flag.SourceDone) return
    const source = this.#puller
    this.#flags |= Flag.SourceDone
    try {
      const result = source.return?.()
      if (isThenable(result)) {
        result.then(undefined, (error: unknown) => this.#fail(error))
      }
    } catch (error) {
      this.#fail(error)
    }
  }

  /**
   * Ends the stream once: timers, registry, signal, sink, source, `closed`, `onClose`. With
   * `openFailure`, `closed` rejects with its error (see {@link Pump.failOpen}).
   */
  #finish(reason: CloseReason, openFailure?: { error: unknown }): void {
    if (this.#state === State.Closed) return
    const wasRunning = this.#state === State.Running
    this.#state = State.Closed
    keepAlive.remove(this)
    const rare = this.#rare
    if (rare) {
      if (rare.sendTimer !== undefined) clearTimeout(rare.sendTimer)
      if (rare.graceTimer !== undefined) clearTimeout(rare.graceTimer)
      if (rare.lifeTimer !== undefined) clearTimeout(rare.lifeTimer)
      rare.sendTimer = rare.graceTimer = rare.lifeTimer = undefined
    }
    this.#options.registry.delete(this)
    this.#abortWith(reason)
    const sink = this.#sink
    if (sink && wasRunning) {
      if (reason === 'timeout' || reason === 'disconnect') {
        this.#pending = ''
        sink.destroy()
      } else {
        // done, shutdown, maxDuration, error: the client gets what was produced, then a clean
        // end.
        const pending = this.#pending
        this.#pending = ''
        if (pending !== '') {
          const chunk = typeof pending === 'string' ? pending : pending.toBytes()
          if (streamWrite.hasSubscribers) this.#publishWrite(chunk)
          sink.write(chunk, typeof pending !== 'string' && pending.shared)
        }
        sink.end()
      }
    }
    if (reason === 'error' && streamError.hasSubscribers) {
      const error = openFailure ? openFailure.error : rare?.failure
      streamError.publish({ stream: this.#observed, error })
    }
    if (streamClose.hasSubscribers) this.#publishClose(reason, wasRunning)
    this.#stopSource()
    // Before `onClose` and `closed`: what they see (a limiter's count) no longer holds this one.
    const release = this.#rare?.release
    if (release) {
      this.#rare!.release = undefined
      release()
    }
    this.#settle(openFailure ? Promise.reject(openFailure.error) : reason)
    const { onClose } = this.#options
    if (onClose) {
      try {
        onClose(reason)
      } catch (error) {
        this.report(error)
      }
    }
  }

  #publishClose(reason: CloseReason, opened: boolean): void {
    const stream = this.#observed
    const durationMs = stream.openedAt === undefined ? undefined : now() - stream.openedAt
    streamClose.publish({ stream, reason, opened, durationMs })
  }
}

/**
 * Makes a pump and the promise that settles once it has ended: with the {@link CloseReason},
 * or rejected with the content function's error after {@link Pump.failOpen}.
 */
export function createPump<Req>(init: PumpInit<Req>): [Pump<Req>, Promise<CloseReason>] {
  let pump!: Pump<Req>
  const closed = new Promise<CloseReason>((resolve) => {
    pump = new Pump(init, resolve)
  })
  return [pump, closed]
}
