/**
 * Opt-in SIGTERM/SIGINT handling: end every stream cleanly, then close the server.
 * Nothing is installed unless you call {@link installShutdownHandlers}.
 *
 * @module
 */

import { checkOptionNames, invalidOption } from '../errors.ts'
import { ANY_WAIT, allowsShortDurations, checkDelay, type DurationRule } from '../util/delay.ts'
import { defaultRegistry, type StreamRegistry } from './registry.ts'

/** A server `installShutdownHandlers` can close: `node:http`, `https`, `http2`, Fastify. */
export interface ClosableServer {
  close(callback?: (error?: Error) => void): unknown
}

/** Options of {@link installShutdownHandlers}. */
export interface ShutdownHandlerOptions {
  /**
   * The registry whose streams to close.
   * @defaultValue {@link defaultRegistry}
   */
  registry?: StreamRegistry | undefined
  /**
   * Farewell time (ms) for each stream; see `StreamRegistry.closeAll`.
   * @defaultValue `0`
   */
  grace?: number | undefined
  /**
   * The signals to handle.
   * @defaultValue `['SIGTERM', 'SIGINT']`
   */
  signals?: readonly string[] | undefined
  /**
   * After this many ms, connections still open (other long requests, idle keep-alive sockets)
   * are closed by force so the process does not hang. `0` waits forever. A whole number of ms,
   * at least 1000 outside tests (`forceAfter: 10` is seconds written for ms, and is refused).
   * @defaultValue `10000`
   */
  forceAfter?: number | undefined
  /**
   * Once the server has closed, raise the signal again with these handlers removed, so the
   * process ends as it would have without them (unless other handlers keep it). Set `false`
   * to leave exiting to your own code.
   * @defaultValue `true`
   */
  exit?: boolean | undefined
  /**
   * Called once shutdown has finished (or failed), before the process exits. It may return a
   * promise (closing a database, a broadcaster): the handlers stay installed until it settles,
   * so a repeated signal meanwhile (a Ctrl+C that reaches the process twice, from the terminal
   * and from `npm`) is ignored instead of killing the process halfway through its cleanup.
   */
  onDone?: ((error?: unknown) => void | Promise<void>) | undefined
}

/**
 * On SIGTERM or SIGINT: end every stream of the registry cleanly (clients get a proper end and
 * reconnect elsewhere), close the server, then let the process exit.
 *
 * Explicit opt-in: importing Oven patches nothing.
 *
 * @returns a function that removes the handlers.
 *
 * @example
 * ```ts
 * const server = app.listen(3000)
 * installShutdownHandlers(server, { grace: 2000 })
 * ```
 */
export function installShutdownHandlers(
  server: ClosableServer,
  options: ShutdownHandlerOptions = {},
): () => void {
  if (typeof server?.close !== 'function') invalidOption('server', 'a server with close()', server)
  // Everything is checked now: a bad option found only when SIGTERM arrives would leave the
  // streams unclosed (or crash) at the worst moment.
  checkOptions(options)
  const registry = options.registry ?? defaultRegistry
  const signals = options.signals ?? ['SIGTERM', 'SIGINT']
  const forceAfter = options.forceAfter ?? 10_000
  let started = false

  const uninstall = (): void => {
    for (const signal of signals) process.off(signal, handle)
  }

  async function shutdown(signal: string): Promise<void> {
    let failure: unknown
    const force =
      forceAfter > 0
        ? setTimeout(() => {
            ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
          }, forceAfter)
        : undefined
    force?.unref()
    try {
      await registry.closeAll({ grace: options.grace })
      await new Promise<void>((resolve, reject) => {
        const result = server.close((error) => {
          if (error && (error as { code?: string }).code !== 'ERR_SERVER_NOT_RUNNING') reject(error)
          else resolve()
        })
        // Fastify's close() returns a promise as well as taking a callback.
        if (result && typeof (result as Promise<unknown>).then === 'function') {
          ;(result as Promise<unknown>).then(() => resolve(), reject)
        }
      })
    } catch (error) {
      failure = error
    } finally {
      if (force) clearTimeout(force)
    }
    try {
      await options.onDone?.(failure)
    } catch (error) {
      // The process must still go on to exit.
      console.error('[oven-sse] onDone threw during shutdown:', error)
    }
    uninstall()
    if (options.exit !== false) process.kill(process.pid, signal)
  }

  function handle(signal: string): void {
    if (started) return
    started = true
    void shutdown(signal)
  }

  for (const signal of signals) {
    try {
      process.on(signal, handle)
    } catch {
      // SIGKILL and SIGSTOP cannot be caught; Node throws EINVAL for them.
      uninstall()
      invalidOption('signals', 'signals a process can handle (not SIGKILL or SIGSTOP)', signal)
    }
  }
  return uninstall
}

/** The options of {@link installShutdownHandlers}. */
const OPTIONS = ['registry', 'grace', 'signals', 'forceAfter', 'exit', 'onDone']

// Closing connections by force sooner than a second after the signal cuts ordinary requests
// mid-flight, and `forceAfter: 10` is the seconds of `--timeout-graceful-shutdown 10`
// (uvicorn): refused outside tests (see stream/delay.ts).
const FORCE_AFTER: DurationRule = { min: 1000, zero: 'to wait for ever' }

function checkOptions(options: ShutdownHandlerOptions): void {
  checkOptionNames('installShutdownHandlers()', options, OPTIONS)
  const { registry, grace, signals, forceAfter, exit, onDone } = options
  if (
    registry !== undefined &&
    (typeof registry !== 'object' ||
      registry === null ||
      typeof (registry as StreamRegistry).closeAll !== 'function')
  ) {
    invalidOption('registry', 'a StreamRegistry', registry)
  }
  const short = allowsShortDurations(options)
  if (grace !== undefined) checkDelay('grace', grace, ANY_WAIT, short)
  if (forceAfter !== undefined) checkDelay('forceAfter', forceAfter, FORCE_AFTER, short)
  if (
    signals !== undefined &&
    (!Array.isArray(signals) || signals.some((s) => typeof s !== 'string' || s === ''))
  ) {
    invalidOption('signals', 'an array of signal names such as ["SIGTERM", "SIGINT"]', signals)
  }
  if (exit !== undefined && typeof exit !== 'boolean') invalidOption('exit', 'a boolean', exit)
  if (onDone !== undefined && typeof onDone !== 'function') {
    invalidOption('onDone', 'a function', onDone)
  }
}
