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

const schedule: (callback: () => void) => unknown =
  typeof globalThis.setImmediate === 'function'
    ? globalThis.setImmediate
    : (callback) => setTimeout(callback, 0)

const now = () => performance.now()

/** Keeps a timer from holding the process open, where the runtime supports it. */
function unref(timer: unknown): void {
  ;(timer as { unref?: () => void }).unref?.()
}

function isAbortLike(error: unknown, signal: AbortSignal): boolean {
  return error === signal.reason || (error as Error | undefined)?.name === 'AbortError'
}

/** The default error report: a stream's failure must never go unseen. */
function logError(error: unknown): void {
  console.error('[oven-sse] a stream ended with an error:', error)
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
  readonly #controller = new AbortController()
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
    this.#ctx = {
      signal: this.#controller.signal,
      lastEventId: init.lastEventId,
      request: init.request,
    }
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
    this.#opening ??= openContent(this.#content, this.#ctx).then((source) => {
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
    this.#controller.abort('shutdown')
    if (this.#state !== State.Running || ownGrace <= 0 || this.#sourceDone) {
      this.#finish('shutdown')
      return
    }
    this.#graceTimer = setTimeout(() => this.#finish('shutdown'), ownGrace)
    unref(this.#graceTimer)
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
      schedule(this.#scheduledFlush)
    }
  }

  readonly #scheduledFlush = (): void => {
    this.#flushScheduled = false
    if (this.#state === State.Running) this.#flush()
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
      this.#sendTimer = setTimeout(this.#onSendTimeout, sendTimeout)
      unref(this.#sendTimer)
    }
    this.#drained = this.#sink!.drain().then(this.#onDrain)
  }

  readonly #onDrain = (): void => {
    this.#blocked = false
    if (this.#sendTimer !== undefined) {
      clearTimeout(this.#sendTimer)
      this.#sendTimer = undefined
    }
  }

  readonly #onSendTimeout = (): void => {
    this.#sendTimer = undefined
    if (this.#blocked) this.#finish('timeout')
  }

  #armPing(delay: number): void {
    this.#pingTimer = setTimeout(this.#onPingTimer, delay)
    unref(this.#pingTimer)
  }

  // Idle-aware keep-alive: a ping goes out only after `ping` ms without any write, so a busy
  // stream pays nothing for it. The timer is re-armed for the remaining idle time instead.
  readonly #onPingTimer = (): void => {
    this.#pingTimer = undefined
    if (this.#state !== State.Running) return
    const interval = this.#options.ping
    const idle = now() - this.#lastWrite
    if (idle + 1 < interval) {
      this.#armPing(interval - idle)
      return
    }
    if (!this.#blocked) {
      try {
        this.#sendPing()
      } catch (error) {
        this.#fail(error)
        return
      }
    }
    this.#armPing(interval)
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
      if (!isAbortLike(error, this.#controller.signal) && error !== this.#failure) {
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
    if (!this.#controller.signal.aborted) this.#controller.abort(reason)
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
