/**
 * Clients for the reliability suites: raw HTTP/1.1 over `node:net` and `node:http`, so a test
 * controls exactly when a client reads, stops reading or vanishes.
 */

import { readFileSync } from 'node:fs'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { sleep } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'

/** An open event stream as a `node:http` client sees it. */
export interface OpenStream {
  res: IncomingMessage
  /** Every byte received so far, as text. */
  text(): string
  /** Settles when the response ends cleanly (`'end'`) or breaks (`'aborted'`/`'close'`). */
  ended: Promise<'end' | 'close'>
  /** Tears the connection down from the client side. */
  destroy(): void
}

/**
 * GETs `url` with `agent: false` (one socket per stream) and resolves once the head arrived.
 * It asks for keep-alive, as EventSource clients do: without an agent Node's client would send
 * `Connection: close`, and the server would then close every socket as its stream ends.
 */
export function openStream(
  url: string,
  headers: Record<string, string> = {},
  timeout = 10_000,
): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      agent: false,
      headers: { connection: 'keep-alive', ...headers },
    })
    const timer = setTimeout(() => {
      req.destroy()
      reject(new Error(`openStream: no response head from ${url} in ${timeout} ms`))
    }, timeout)
    req.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    req.on('response', (res) => {
      clearTimeout(timer)
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
      })
      res.on('error', () => {})
      const ended = new Promise<'end' | 'close'>((done) => {
        res.once('end', () => done('end'))
        res.once('close', () => done(res.complete ? 'end' : 'close'))
      })
      resolve({ res, text: () => text, ended, destroy: () => req.destroy() })
    })
    req.end()
  })
}

/** Reads a whole (short) response: status, headers, body. */
export async function fetchText(url: string, headers: Record<string, string> = {}) {
  const stream = await openStream(url, headers)
  await stream.ended
  return { status: stream.res.statusCode ?? 0, headers: stream.res.headers, body: stream.text() }
}

// The shared helpers, under the names these suites use: a raw client that sends a GET and then
// never reads (a frozen tab, a stuck proxy), and a delay. Polling is helpers/wait.ts's waitFor.
export { stalledClient as stuckClient } from '../helpers/streams.ts'
export { sleep }

/**
 * Waits until `read()` (a count of items a source produced) stops growing, and returns it.
 *
 * "Stopped" is counted in polls, not measured in time: the value must be the same in `polls`
 * readings in a row. Each reading needs a turn of the server's event loop (in-process servers
 * share this loop; out-of-process ones answer `read` themselves), and a source whose pump still
 * pulls grows on every turn, so a slow machine delays this wait but cannot end it early.
 * The wait ends at once, returning the value, if it passes `bound`: the gate a source must not
 * pass while its client reads nothing. The caller asserts the returned value against `bound`.
 */
export async function untilStalled(
  what: string,
  read: () => number | Promise<number>,
  { bound, polls = 20, interval = 10, timeout = 30_000 }: StallOptions,
): Promise<number> {
  let last = Number.NaN
  let same = 0
  return waitFor(
    `${what} to stop growing (${polls} equal readings) at ${bound} or less`,
    async () => {
      const now = await read()
      same = now === last ? same + 1 : 0
      last = now
      return now
    },
    { until: (now) => now > bound || same >= polls, interval, timeout },
  )
}

/** Options of {@link untilStalled}. */
export interface StallOptions {
  /** The most the value may reach; the wait ends as soon as it is passed. */
  bound: number
  /** Equal readings in a row that count as stopped; default 20. */
  polls?: number
  /** Milliseconds between readings; default 10. */
  interval?: number
  /** Milliseconds before the wait fails; default 30 000. */
  timeout?: number
}

/**
 * The most bytes a loopback TCP connection holds when its reader reads nothing: the sender's
 * buffer, which Linux grows up to `tcp_wmem`'s maximum, plus the receiver's, which stays at
 * `tcp_rmem`'s default because Linux grows a receive buffer only as the application reads
 * (`tcp_rcv_space_adjust`). Read from /proc; where absent, Linux's defaults (4 MiB, 128 KiB).
 */
export function stuckTcpBytes(): number {
  const field = (file: string, index: number, fallback: number) => {
    try {
      const value = Number(readFileSync(file, 'utf8').trim().split(/\s+/)[index])
      return Number.isFinite(value) && value > 0 ? value : fallback
    } catch {
      // Not Linux (no /proc): use Linux's defaults.
      return fallback
    }
  }
  return (
    field('/proc/sys/net/ipv4/tcp_wmem', 2, 4 * 2 ** 20) +
    field('/proc/sys/net/ipv4/tcp_rmem', 1, 128 * 2 ** 10)
  )
}

/**
 * A `.catch` for a delay cut short by `signal`: the abort is how the source learns it should
 * stop, so it is let through; any other error is not.
 */
export const unlessAborted = (signal: AbortSignal) => (error: unknown) => {
  if (!signal.aborted) throw error
}

/** Active handles and requests other than the ones every test process has. */
export function openHandles(): string[] {
  return process
    .getActiveResourcesInfo()
    .filter((name) => name !== 'TTYWrap' && name !== 'PipeWrap' && name !== 'Immediate')
}

/**
 * The garbage collector, without `--expose-gc` on the command line: the flag is set at run time
 * and `gc` read from a fresh context (which sees it), so no test config has to change.
 */
export const gc: () => void =
  (globalThis as { gc?: () => void }).gc ??
  (() => {
    setFlagsFromString('--expose-gc')
    return runInNewContext('gc') as () => void
  })()

/**
 * Forces full collections until two readings in a row agree within 64 KiB; returns that
 * `heapUsed`. Fails, with every reading, when the heap does not settle within 20 collections:
 * an unsettled figure (taken mid-allocation) would make a heap comparison pass or fail by
 * chance, so it is never returned as if it were settled.
 */
export async function settledHeap(): Promise<number> {
  const readings: number[] = []
  for (let i = 0; i < 20; i++) {
    gc()
    // A short pause lets finalizers and the sockets' close callbacks run between collections.
    await sleep(30)
    const used = process.memoryUsage().heapUsed
    const last = readings.at(-1)
    if (last !== undefined && Math.abs(last - used) < 64 * 1024) return used
    readings.push(used)
  }
  throw new Error(
    `settledHeap: the heap did not settle in 20 collections (readings in MB: ${readings.map(mb).join(', ')})`,
  )
}

/** Megabytes, one decimal, for the figures a test prints. */
export const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10
