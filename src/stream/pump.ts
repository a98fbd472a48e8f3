/**
 * The pump: one implementation of a live stream, shared by every transport.
 *
 * It pulls the source only while the sink can take more (backpressure), batches the encoded
 * text of events produced in one burst into one write, pings after idle time, drops a client
 * that stops reading (`sendTimeout`), takes part in shutdown, and ends exactly once with a
 * reason, clearing every timer and listener it made.
 *
 * @internal
 * @module
 */

import {
  type EventInit,
  encodeData,
  encodeEventObject,
  ServerSentEvent,
} from '../encoder/encode.ts'
import { describe, SseError } from '../errors.ts'
import type { ShutdownTarget } from '../shutdown/registry.ts'
import type { ResolvedOptions } from './options.ts'
import { scheduleAfterBurst } from './schedule.ts'
import { isThenable, openContent, type Puller } from './source.ts'
import type { CloseReason, Content, StreamContext } from './types.ts'

/**
 * The contract between the pump and a transport. Everything framework- or runtime-specific
 * lives behind it.
 */
export interface Sink {
  /** Writes a chunk. Returns `false` when the client is not keeping up: wait for `drain()`. */
  write(chunk: string | Uint8Array): boolean
  /** Settles once the sink can take more, or has closed (the pump then learns of the close). */
  drain(): Promise<void>
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

// Encoded events are gathered and written in one go once this much text is pending, or when
// the source pauses (a macrotask later), whichever comes first. Measured: writing each 64-byte
// event on its own costs more CPU in the transport than encoding it.
const BATCH_CHARS = 16 * 1024

// Timer callbacks are static functions handed the pump as an argument, not arrow functions
// stored on each pump. Measured (bench, heap snapshots of 2 000 idle streams): four closures
// per pump that an idle stream never uses were ~10% of Oven's memory per connection.
const now = () => performance.now()

/** Keeps a timer from holding the process open, where the runtime supports it. */
function unref(timer: unknown): void {
  ;(timer as { unref?: () => void }).unref?.()
}

function isAbortLike(error: unknown, reason: unknown): boolean {
  return error === reason || (error as Error | undefined)?.name === 'AbortError'
}

/** The default error report: a stream's failure must never go unseen. */
function logError(error: unknown): void {
  console.error('[oven-sse] a stream ended with an error:', error)
}

/**
 * The `ctx` a source sees: `signal`, `lastEventId`, `request`, as own enumerable properties (so
 * `{ ...ctx, filter }` keeps them). `signal` is an accessor that makes the AbortSignal on first
 * use. It is defined with one shared getter: per-object getter closures (an object literal's
 * `get signal()`) measured ~0.35 KiB per stream, as V8 then keeps each context as a dictionary.
 */
class Context<Req> implements StreamContext<Req> {
  declare readonly signal: AbortSignal
  declare readonly lastEventId: string | undefined
  declare readonly request: Req
  readonly #pump: Pump<Req>

  constructor(pump: Pump<Req>, lastEventId: string | undefined, request: Req) {
    this.#pump = pump
    // In the order of the plain object this replaces: signal, lastEventId, request.
    Object.defineProperty(this, 'signal', SIGNAL)
    this.lastEventId = lastEventId
    this.request = request
  }

  static signalOf(ctx: Context<unknown>): AbortSignal {
    return ctx.#pump.contextSignal()
  }
}

const SIGNAL: PropertyDescriptor = {
  get(this: Context<unknown>) {
    return Context.signalOf(this)
  },
  enumerable: true,
  configurable: true,
}

/** Life of a stream: made, streaming, ended. */
const State = { Idle: 0, Running: 1, Closed: 2 } as const
type State = (typeof State)[keyof typeof State]

/** One live stream. */
export class Pump<Req> implements ShutdownTarget {
  /** Settles with the reason once the stream has ended. */
  readonly closed: Promise<CloseReason>
  readonly #options: ResolvedOptions<Req>
  readonly #content: Content<Req>
  // Made on first use of `ctx.signal`. Measured (bench, heap snapshots): an AbortSignal is an
  // EventTarget with two Maps, ~0.5 KiB, the largest single cost of an idle stream whose
  // source (a channel, a subscription passed as is, an iterable) never looks at the signal.
  #controller: AbortController | undefined
  /** Why the stream aborted, while no signal has been made yet. */
  #abortReason: CloseReason | undefined
  readonly #ctx: StreamContext<Req>
  #resolveClosed!: (reason: CloseReason) => void

  #state: State = State.Idle
  #sink: Sink | undefined
  #source: Puller | undefined
  #opening: Promise<Puller> | undefined
  #sourceDone = false
  #shuttingDown = false
  /** The error that ended the stream, if one did. */
  #failure: unknown

  #pending = ''
  #flushScheduled = false
  #blocked = false
  #drained: Promise<void> | undefined
  #lastWrite = 0

  #pingTimer: ReturnType<typeof setTimeout> | undefined
  #sendTimer: ReturnType<typeof setTimeout> | undefined
  #graceTimer: ReturnType<typeof setTimeout> | undefined

  constructor(init: PumpInit<Req>) {
    this.#options = init.options
    this.#content = init.content
    this.#ctx = new Context(this, init.lastEventId, init.request)
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve
    })
  }

  /** The context the source and `dataSender` see. */
  get context(): StreamContext<Req> {
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
    if (this.#source) return Promise.resolve(this.#source)
    this.#opening ??= openContent(this.#content, this.#ctx, this).then((source) => {
      this.#source = source
      // The client may have gone while the function ran: stop the new source at once.
      if (this.#state === State.Closed) this.#stopSource()
      return source
    })
    return this.#opening
  }

  /** Starts streaming into `sink`, after the response head has been sent. */
  async start(sink: Sink): Promise<void> {
    if (this.#state !== State.Idle) return
    this.#sink = sink
    this.#state = State.Running
    try {
      await this.open()
    } catch (error) {
      this.#fail(error)
      return
    }
    // The source is kept; the promise that made it need not be, for the stream's whole life.
    this.#opening = undefined
    if (this.#isClosed()) return
    const { registry, retry, ping, dataSender } = this.#options
    if (!registry.add(this)) {
      this.#finish('shutdown')
      return
    }
    this.#lastWrite = now()
    if (retry !== undefined) this.#push(`retry: ${retry}${this.#options.sep}${this.#options.sep}`)
    if (ping > 0) this.#armPing(ping)
    if (dataSender) this.#startDataSender(dataSender)
    void this.#run()
  }

  /** The transport saw the client go away. */
  disconnect(): void {
    this.#finish('disconnect')
  }

  /** Called by the registry: abort the source with reason `shutdown`, then end after grace. */
  beginShutdown(grace: number): void {
    if (this.#state === State.Closed || this.#shuttingDown) return
    this.#shuttingDown = true
    const ownGrace = this.#options.shutdownGrace ?? grace
    this.#callHook(this.#options.onShutdown)
    this.#abort('shutdown')
    if (this.#state !== State.Running || ownGrace <= 0 || this.#sourceDone) {
      this.#finish('shutdown')
      return
    }
    this.#graceTimer = setTimeout(() => this.#finish('shutdown'), ownGrace)
    unref(this.#graceTimer)
  }

  /**
   * Drops the client at once (reason `timeout`, connection closed): for a source that learns
   * its client has fallen too far behind; see `dropClient` in `source.ts`.
   */
  dropClient(): void {
    this.#finish('timeout')
  }

  /** Ends the stream with `reason`, reporting nothing (the caller handles any error). */
  close(reason: CloseReason): void {
    this.#finish(reason)
  }

  async #run(): Promise<void> {
    const source = this.#source!
    try {
      while (this.#state === State.Running) {
        if (this.#blocked) {
          await this.#drained
          continue
        }
        let result = source.next()
        if (isThenable(result)) result = await result
        if (this.#isClosed()) return
        if (result.done) {
          this.#sourceDone = true
          this.#finish(this.#shuttingDown ? 'shutdown' : 'done')
          return
        }
        let item = result.value
        // A sync iterable may yield promises, as in `for await`.
        if (isThenable(item)) {
          item = await item
          if (this.#isClosed()) return
        }
        this.#emit(item)
      }
    } catch (error) {
      this.#fail(error)
    }
  }

  /**
   * `ctx.signal`, made on first use.
   *
   * @internal
   */
  contextSignal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#abortReason !== undefined) this.#controller.abort(this.#abortReason)
    }
    return this.#controller.signal
  }

  /** Aborts `ctx.signal` with `reason`, unless it aborted already (the first reason stays). */
  #abort(reason: CloseReason): void {
    if (this.#controller === undefined) this.#abortReason ??= reason
    else if (!this.#controller.signal.aborted) this.#controller.abort(reason)
  }

  #isClosed(): boolean {
    return this.#state === State.Closed
  }

  #emit(item: unknown): void {
    const { sep, serialize } = this.#options
    if (typeof item === 'string') {
      this.#push(encodeData(item, sep))
    } else if (item instanceof ServerSentEvent) {
      this.#push(item.encode(sep))
    } else if (item instanceof Uint8Array) {
      this.#flush()
      this.#write(item)
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

  /** Queues encoded text; it goes out at the end of this burst or when the batch is full. */
  #push(text: string): void {
    this.#pending += text
    if (this.#pending.length >= BATCH_CHARS) {
      this.#flush()
    } else if (!this.#flushScheduled) {
      this.#flushScheduled = true
      scheduleAfterBurst(Pump.#scheduledFlush, this)
    }
  }

  static #scheduledFlush<R>(pump: Pump<R>): void {
    pump.#flushScheduled = false
    if (pump.#state === State.Running) pump.#flush()
  }

  #flush(): void {
    if (this.#pending === '') return
    const chunk = this.#pending
    this.#pending = ''
    this.#write(chunk)
  }

  #write(chunk: string | Uint8Array): void {
    this.#lastWrite = now()
    if (!this.#sink!.write(chunk)) this.#onBlocked()
  }

  #onBlocked(): void {
    if (this.#blocked) return
    this.#blocked = true
    const { sendTimeout } = this.#options
    if (sendTimeout > 0) {
      this.#sendTimer = setTimeout(Pump.#onSendTimeout, sendTimeout, this)
      unref(this.#sendTimer)
    }
    this.#drained = this.#sink!.drain().then(() => this.#onDrain())
  }

  #onDrain(): void {
    this.#blocked = false
    if (this.#sendTimer !== undefined) {
      clearTimeout(this.#sendTimer)
      this.#sendTimer = undefined
    }
  }

  static #onSendTimeout<R>(pump: Pump<R>): void {
    pump.#sendTimer = undefined
    if (pump.#blocked) pump.#finish('timeout')
  }

  #armPing(delay: number): void {
    this.#pingTimer = setTimeout(Pump.#onPingTimer, delay, this)
    unref(this.#pingTimer)
  }

  // Idle-aware keep-alive: a ping goes out only after `ping` ms without any write, so a busy
  // stream pays nothing for it. The timer is re-armed for the remaining idle time instead.
  static #onPingTimer<R>(pump: Pump<R>): void {
    pump.#pingTimer = undefined
    if (pump.#state !== State.Running) return
    const interval = pump.#options.ping
    const idle = now() - pump.#lastWrite
    if (idle + 1 < interval) {
      pump.#armPing(interval - idle)
      return
    }
    if (!pump.#blocked) {
      try {
        pump.#sendPing()
      } catch (error) {
        pump.#fail(error)
        return
      }
    }
    pump.#armPing(interval)
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

  #startDataSender(dataSender: (ctx: StreamContext<Req>) => unknown): void {
    let result: unknown
    try {
      result = dataSender(this.#ctx)
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
      const reason = this.#controller ? this.#controller.signal.reason : this.#abortReason
      if (!isAbortLike(error, reason) && error !== this.#failure) {
        this.#report(error)
      }
      return
    }
    this.#failure = error
    this.#report(error)
    this.#finish('error')
  }

  #report(error: unknown): void {
    const { onError } = this.#options
    if (!onError) {
      logError(error)
      return
    }
    try {
      onError(error)
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
      this.#report(error)
    }
  }

  #stopSource(): void {
    const source = this.#source
    if (!source || this.#sourceDone) return
    this.#sourceDone = true
    try {
      const result = source.stop()
      if (isThenable(result)) {
        result.then(undefined, (error: unknown) => this.#fail(error))
      }
    } catch (error) {
      this.#fail(error)
    }
  }

  #finish(reason: CloseReason): void {
    if (this.#state === State.Closed) return
    const wasRunning = this.#state === State.Running
    this.#state = State.Closed
    for (const timer of [this.#pingTimer, this.#sendTimer, this.#graceTimer]) {
      if (timer !== undefined) clearTimeout(timer)
    }
    this.#pingTimer = this.#sendTimer = this.#graceTimer = undefined
    this.#options.registry.delete(this)
    this.#abort(reason)
    const sink = this.#sink
    if (sink && wasRunning) {
      if (reason === 'timeout' || reason === 'disconnect') {
        this.#pending = ''
        sink.destroy()
      } else {
        // done, shutdown, error: the client gets what was produced, then a clean end.
        const chunk = this.#pending
        this.#pending = ''
        if (chunk !== '') sink.write(chunk)
        sink.end()
      }
    }
    this.#stopSource()
    this.#resolveClosed(reason)
    const { onClose } = this.#options
    if (onClose) {
      try {
        onClose(reason)
      } catch (error) {
        this.#report(error)
      }
    }
  }
}
