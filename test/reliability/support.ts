/**
 * Clients for the reliability suites: raw HTTP/1.1 over `node:net` and `node:http`, so a test
 * controls exactly when a client reads, stops reading or vanishes.
 */

import { request as httpRequest, type IncomingMessage } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { sleep, waitFor } from '../helpers/servers.ts'

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
// never reads (a frozen tab, a stuck proxy), a delay, and polling until a condition holds.
export { stalledClient as stuckClient } from '../helpers/streams.ts'
export { sleep, waitFor as until }

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

/** Forces full collections until the heap settles; returns `heapUsed` after. */
export async function settledHeap(): Promise<number> {
  let last = Number.POSITIVE_INFINITY
  for (let i = 0; i < 10; i++) {
    gc()
    await sleep(30)
    const used = process.memoryUsage().heapUsed
    if (Math.abs(last - used) < 64 * 1024) return used
    last = used
  }
  return last
}

/** Megabytes, one decimal, for the figures a test prints. */
export const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10
