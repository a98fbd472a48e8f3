/**
 * Demonstration — surviving network interruptions without losing events.
 *
 * The server gives every event an id and can resume a stream after any id it is sent back
 * (here the events are a deterministic sequence; in an application, ids are positions in a log
 * or a Broadcaster's history). The client reconnects with exponential backoff and sends
 * `Last-Event-ID`, so an interruption costs time, never events:
 *
 *   connection cut   the server drops every stream (a proxy reset, a network blip)
 *   503 twice        the next two attempts are refused (an overloaded or deploying backend)
 *   server restart   the server goes away for RESTART_MS and comes back with fresh state
 *   slow server      the next connection waits DELAY_MS before its head is sent
 *
 * A partly received event is never lost either: a client dispatches an event only at its
 * blank line, so an event cut in half is not counted and is sent again after the resume.
 *
 * Modes:
 *   (default)  demo   server and client in this process, walking through the scenarios; prints
 *                     a summary and exits 0 if the client got every event exactly once
 *   server           only the server (PORT), with /control?cut=1, ?fail=N, ?delay=ms
 *   client           only the client, against --url
 *
 * Run:  npx tsx examples/demonstrations/production_scenarios/network_interruption.ts
 *
 * Environment: PORT (server mode, default 8000), TICK_MS (default 200), BASE_MS (first backoff,
 * default 500), RESTART_MS (default 1500), DELAY_MS (default 1000), TOTAL (default 40).
 */

import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { type StreamContext, sendEventStream } from '../../../src/node.ts'

const env = process.env
const tick = Number(env.TICK_MS ?? 200)
const baseDelay = Number(env.BASE_MS ?? 500)
const restartFor = Number(env.RESTART_MS ?? 1500)
const delayFor = Number(env.DELAY_MS ?? 1000)
const total = Number(env.TOTAL ?? 40)

const log = (line: string) => console.log(line)

// ---------------------------------------------------------------------------------------------
// Server: resumable events and failure injection

/** Event n of the sequence, the same whichever server instance sends it. */
function reading(n: number) {
  return {
    id: String(n),
    event: 'reading',
    data: { n, celsius: 20 + Math.round(Math.sin(n / 5) * 50) / 10 },
  }
}

async function* readings({ signal, lastEventId }: StreamContext) {
  const after = lastEventId && /^\d+$/.test(lastEventId) ? Number(lastEventId) : 0
  for (let n = after + 1; ; n++) {
    yield reading(n)
    await sleep(tick, undefined, { signal })
  }
}

interface DemoServer {
  port: number
  /** Drops every open stream without a clean end. */
  cut(): void
  /** Refuses the next `n` connections with 503. */
  failNext(n: number): void
  /** Holds the next connection for `ms` before answering. */
  delayNext(ms: number): void
  stop(): Promise<void>
}

function startServer(port: number): Promise<DemoServer> {
  const streams = new Set<ServerResponse>()
  let failures = 0
  let delay = 0
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname === '/control') {
      if (url.searchParams.has('fail')) control.failNext(Number(url.searchParams.get('fail')))
      if (url.searchParams.has('delay')) control.delayNext(Number(url.searchParams.get('delay')))
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ failures, delay, streams: streams.size }))
      if (url.searchParams.has('cut')) setImmediate(() => control.cut())
      return
    }
    if (url.pathname !== '/events') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('try /events or /control\n')
      return
    }
    if (failures > 0) {
      failures--
      res
        .writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' })
        .end('Network Error\n')
      return
    }
    if (delay > 0) {
      const wait = delay
      delay = 0
      await sleep(wait)
    }
    streams.add(res)
    res.on('close', () => streams.delete(res))
    void sendEventStream(req, res, readings, { ping: 5000, sendTimeout: 10_000 })
  })
  const control: DemoServer = {
    port,
    cut() {
      for (const res of streams) res.socket?.destroy()
    },
    failNext(n) {
      failures = n
    },
    delayNext(ms) {
      delay = ms
    },
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  return new Promise((resolve) =>
    server.listen(port, '127.0.0.1', () => {
      control.port = (server.address() as AddressInfo).port
      resolve(control)
    }),
  )
}

// ---------------------------------------------------------------------------------------------
// Client: reconnect with exponential backoff, resume with Last-Event-ID

/**
 * Reads `url` until `signal` aborts, reconnecting after any failure or end: after BASE_MS, then
 * twice as long each time in a row (up to 16x), with jitter so that many clients do not all
 * come back at once. A successful connection resets the backoff.
 */
async function follow(
  url: string,
  onEvent: (event: EventSourceMessage) => void,
  signal: AbortSignal,
) {
  let lastEventId: string | undefined
  let failures = 0
  let connections = 0
  while (!signal.aborted) {
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream' }
      if (lastEventId !== undefined) headers['last-event-id'] = lastEventId
      const response = await fetch(url, { headers, signal })
      if (!response.ok || !response.body) {
        await response.body?.cancel()
        throw new Error(`HTTP ${response.status}`)
      }
      connections++
      failures = 0
      log(
        lastEventId === undefined
          ? 'client: connected'
          : `client: connected (resuming after id ${lastEventId})`,
      )
      const parser = createParser({
        onEvent(event) {
          // Remember the id only once the whole event has arrived: that is what was received.
          if (event.id !== undefined) lastEventId = event.id
          onEvent(event)
        },
      })
      const decoder = new TextDecoder()
      const reader = response.body.getReader()
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        parser.feed(decoder.decode(value, { stream: true }))
      }
      log('client: the stream ended')
    } catch (error) {
      if (signal.aborted) break
      const cause = (error as { cause?: { code?: string } }).cause?.code
      log(`client: connection failed: ${(error as Error).message}${cause ? ` (${cause})` : ''}`)
    }
    if (signal.aborted) break
    const wait = baseDelay * 2 ** Math.min(failures, 4) * (0.8 + Math.random() * 0.4)
    failures++
    log(`client: reconnecting in ${Math.round(wait)} ms (attempt ${failures})`)
    await sleep(wait, undefined, { signal }).catch(() => {})
  }
  return connections
}

// ---------------------------------------------------------------------------------------------

async function demo(): Promise<boolean> {
  let server = await startServer(0)
  const url = `http://127.0.0.1:${server.port}/events`
  log(`demo: server on ${url}; the client will read ${total} events`)
  const received: number[] = []
  const stop = new AbortController()
  const waiters = new Set<() => void>()
  const client = follow(
    url,
    (event) => {
      received.push(JSON.parse(event.data).n)
      for (const wake of waiters) wake()
      if (received.length >= total) stop.abort()
    },
    stop.signal,
  )
  const receivedAtLeast = (count: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (received.length >= count || stop.signal.aborted) {
          waiters.delete(check)
          resolve()
        }
      }
      waiters.add(check)
      check()
    })
  const step = Math.max(1, Math.floor(total / 6))

  log('scenario: normal operation')
  await receivedAtLeast(step)
  log('scenario: connection cut')
  server.cut()
  await receivedAtLeast(step * 2)
  log('scenario: 503 twice')
  server.failNext(2)
  server.cut()
  await receivedAtLeast(step * 3)
  log('scenario: server restart')
  await server.stop()
  log(`server: stopped; back in ${restartFor} ms`)
  await sleep(restartFor)
  server = await startServer(server.port)
  log('server: started again (fresh state)')
  await receivedAtLeast(step * 4)
  log('scenario: slow server')
  server.delayNext(delayFor)
  server.cut()
  await receivedAtLeast(total)
  const connections = await client
  await server.stop()

  const expected = Array.from({ length: total }, (_, i) => i + 1)
  const unique = new Set(received)
  const lost = expected.filter((n) => !unique.has(n)).length
  const duplicated = received.length - unique.size
  const inOrder = received.every((n, i) => n === i + 1)
  log(
    `result: received ${received.length} events (${received[0]}..${received.at(-1)}), ${lost} lost, ${duplicated} duplicated, ` +
      `${inOrder ? 'in order' : 'OUT OF ORDER'}, over ${connections} connections`,
  )
  return lost === 0 && duplicated === 0 && inOrder && received.length === total
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { url: { type: 'string' } },
})
const mode = positionals[0] ?? 'demo'
if (mode === 'demo') {
  process.exitCode = (await demo()) ? 0 : 1
} else if (mode === 'server') {
  const server = await startServer(Number(env.PORT ?? 8000))
  log(`listening on http://127.0.0.1:${server.port}`)
  log(`  control: curl 'http://127.0.0.1:${server.port}/control?cut=1' (or ?fail=2, ?delay=2000)`)
} else if (mode === 'client') {
  if (!values.url) throw new Error('client mode needs --url http://host:port/events')
  await follow(
    values.url,
    (event) => log(`event ${event.id}: ${event.data}`),
    new AbortController().signal,
  )
} else {
  throw new Error(`unknown mode "${mode}": use demo, server or client`)
}
