/**
 * Tracks open streams so a server can end them all cleanly when it stops.
 *
 * @module
 */

import { checkDelay } from '../util/delay.ts'

/**
 * What the registry needs from a stream.
 *
 * @internal
 */
export interface ShutdownTarget {
  /**
   * Starts ending the stream; `grace` is the registry's grace in ms. Once it has ended, the
   * stream calls {@link StreamRegistry.delete}.
   */
  beginShutdown(grace: number): void
}

/** One `closeAll` waiting for the streams that were open when it began. */
interface Closing {
  readonly waitingFor: Set<ShutdownTarget>
  readonly done: () => void
}

/** Options of {@link StreamRegistry.closeAll}. */
export interface CloseAllOptions {
  /**
   * How long (ms) each stream's source may go on after `ctx.signal` aborts with reason
   * `shutdown`, to send farewell events. A stream's own `shutdownGrace` overrides it.
   * @defaultValue `0`
   */
  grace?: number | undefined
}

/**
 * The open streams of one server (or of one test). Streams join the registry given in their
 * `registry` option, or {@link defaultRegistry}.
 *
 * While {@link StreamRegistry.closeAll} runs, new streams end at once with reason `shutdown`: the
 * server is going away. Once it has settled, streams start normally again — the next test, a
 * dev-server reload or a restart in place needs no reset. What keeps a late stream from holding
 * a closing server open is the server itself: on Node, a stream on a server that is no longer
 * listening (`server.close()` was called) is refused with reason `shutdown` too.
 *
 * @example
 * ```ts
 * const registry = new StreamRegistry()
 * app.get('/events', (req, res) => sendEventStream(req, res, source(), { registry }))
 * // on shutdown:
 * await registry.closeAll({ grace: 2000 })
 * server.close()
 * ```
 */
export class StreamRegistry {
  #streams = new Set<ShutdownTarget>()
  /** One token per `closeAll` still running: new streams are refused while there is any. */
  #closing = new Set<object>()
  // Streams report their end by leaving the registry, so they need not keep a promise each.
  #waiting: Closing[] = []

  /** The number of open streams. */
  get size(): number {
    return this.#streams.size
  }

  /** Whether a {@link StreamRegistry.closeAll} is running (begun, and not yet settled). */
  get closing(): boolean {
    return this.#closing.size > 0
  }

  /**
   * Adds a stream. Returns `false` when the registry is closing: the stream must end at once.
   *
   * @internal
   */
  add(stream: ShutdownTarget): boolean {
    if (this.#closing.size > 0) return false
    this.#streams.add(stream)
    return true
  }

  /**
   * Removes a stream that has ended.
   *
   * @internal
   */
  delete(stream: ShutdownTarget): void {
    if (!this.#streams.delete(stream) || this.#waiting.length === 0) return
    let finished = false
    for (const closing of this.#waiting) {
      if (closing.waitingFor.delete(stream) && closing.waitingFor.size === 0) {
        closing.done()
        finished = true
      }
    }
    if (finished) this.#waiting = this.#waiting.filter((closing) => closing.waitingFor.size > 0)
  }

  /**
   * Ends every open stream cleanly: each source sees `ctx.signal` abort with reason `shutdown`,
   * may send farewell events during the grace period, and each client receives a proper end
   * of the response. Streams that start while it runs end at once; once it has settled, new
   * streams start normally.
   *
   * @returns the number of streams that were open; settles once all of them have ended.
   */
  async closeAll(options: CloseAllOptions = {}): Promise<number> {
    const grace = checkDelay('grace', options.grace ?? 0)
    const token = {}
    this.#closing.add(token)
    try {
      return await this.#endAll(grace)
    } finally {
      this.#closing.delete(token)
    }
  }

  async #endAll(grace: number): Promise<number> {
    const streams = [...this.#streams]
    const waitingFor = new Set(streams)
    const ended = new Promise<void>((done) => {
      this.#waiting.push({ waitingFor, done })
    })
    for (const stream of streams) stream.beginShutdown(grace)
    // A stream that ended at once (no grace) has left already; the rest end within grace.
    if (waitingFor.size === 0)
      this.#waiting = this.#waiting.filter((c) => c.waitingFor !== waitingFor)
    else await ended
    return streams.length
  }

  /**
   * Lets new streams start at once, even while a {@link StreamRegistry.closeAll} is still
   * running. Kept for compatibility: new streams need no reset since `closeAll` stopped being
   * sticky (once it has settled, streams start normally). Open streams are left as they are.
   */
  reset(): void {
    this.#closing.clear()
  }
}

/**
 * The key of the process's default registry on `globalThis`: one registry for every copy of
 * Oven loaded in the process. A bundler may load the same source more than once — Next.js
 * compiles route handlers, Pages Router API routes and `instrumentation.ts` each in a layer of
 * their own, with module instances of their own (seen with Next 16.5) — and a `closeAll` on
 * shutdown must still reach the streams every copy opened. The copies meet only through
 * `add`, `delete` and `ShutdownTarget.beginShutdown`.
 */
const DEFAULT_REGISTRY = Symbol.for('oven-sse.defaultRegistry')

/**
 * The registry streams join unless given another through their `registry` option. There is
 * one per process, shared by every copy of Oven in it (see `DEFAULT_REGISTRY` above).
 */
export const defaultRegistry: StreamRegistry = ((
  globalThis as { [DEFAULT_REGISTRY]?: StreamRegistry }
)[DEFAULT_REGISTRY] ??= new StreamRegistry())
