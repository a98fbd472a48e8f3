/**
 * Demonstration — load: many concurrent clients on one server.
 *
 * Modes:
 *   (default)  run    start the server and the clients in this process, print a live progress
 *                     line and a summary, exit 0 if every client got every event in order
 *   server           only the server (PORT); watch it with `curl http://127.0.0.1:8000/stats`
 *   client           only the clients, against --url (another machine, another process)
 *
 * Run:  npx tsx examples/demonstrations/production_scenarios/load_simulations.ts --clients 200
 *       npx tsx examples/demonstrations/production_scenarios/load_simulations.ts server
 *       npx tsx examples/demonstrations/production_scenarios/load_simulations.ts client --url http://127.0.0.1:8000
 *
 * Options: --clients N (default 100), --events N per client (default 50), --interval ms between
 * a stream's events (default 100), --url (client mode). Environment: PORT (default 8000).
 *
 * Each client checks what it received (ids 1..N, in order), so the numbers count correct
 * deliveries, not bytes. The figures depend on the machine; this is a demonstration, not a
 * benchmark.
 */

import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { type StreamContext, sendEventStream } from '../../../src/node.ts'
import { iterateEvents } from '../../../src/testing.ts'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    clients: { type: 'string', default: '100' },
    events: { type: 'string', default: '50' },
    interval: { type: 'string', default: '100' },
    url: { type: 'string' },
  },
})
const mode = positionals[0] ?? 'run'
const clients = Number(values.clients)
const eventsPerClient = Number(values.events)
const interval = Number(values.interval)

// ---------------------------------------------------------------------------------------------
// Server

const stats = { active: 0, peak: 0, total: 0, eventsSent: 0, startedAt: Date.now() }

async function* events({ signal, request }: StreamContext<{ url?: string | undefined }>) {
  const url = new URL(request.url ?? '/', 'http://localhost')
  const count = Number(url.searchParams.get('count') ?? eventsPerClient)
  const every = Number(url.searchParams.get('interval') ?? interval)
  for (let i = 1; i <= count; i++) {
    yield { id: String(i), data: `event ${i} of ${count}` }
    stats.eventsSent++
    if (i < count) await sleep(every, undefined, { signal })
  }
}

function startServer(port: number): Promise<Server> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (path === '/events') {
      stats.active++
      stats.total++
      stats.peak = Math.max(stats.peak, stats.active)
      void sendEventStream(req, res, events, {
        onClose: () => {
          stats.active--
        },
      })
      return
    }
    if (path === '/stats') {
      const uptime = (Date.now() - stats.startedAt) / 1000
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          ...stats,
          uptime,
          eventsPerSecond: Math.round(stats.eventsSent / uptime),
        }),
      )
      return
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('try /events or /stats\n')
  })
  // Many clients connect at once: let the kernel queue them all.
  return new Promise((resolve) =>
    server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => resolve(server)),
  )
}

// ---------------------------------------------------------------------------------------------
// Clients

interface ClientResult {
  received: number
  ok: boolean
  error?: string
}

async function client(
  url: string,
  progress: { received: number; connected: number },
): Promise<ClientResult> {
  let received = 0
  let connected = false
  try {
    const stream = iterateEvents(`${url}/events?count=${eventsPerClient}&interval=${interval}`, {
      timeout: eventsPerClient * interval + 60_000,
    })
    for await (const event of stream) {
      if (!connected) {
        connected = true
        progress.connected++
      }
      received++
      progress.received++
      // Check as we go: ids 1..N in order, or the run fails.
      if (event.id !== String(received)) {
        return { received, ok: false, error: `expected id ${received}, got ${event.id}` }
      }
    }
    return { received, ok: received === eventsPerClient }
  } catch (error) {
    return { received, ok: false, error: (error as Error).message }
  } finally {
    if (connected) progress.connected--
  }
}

async function runClients(url: string): Promise<boolean> {
  console.log(
    `load: ${clients} clients x ${eventsPerClient} events, ${interval} ms apart, against ${url}`,
  )
  const progress = { received: 0, connected: 0 }
  const started = performance.now()
  let last = { at: started, received: 0 }
  const live = process.stdout.isTTY
  const timer = setInterval(
    () => {
      const now = performance.now()
      const rate = Math.round(((progress.received - last.received) * 1000) / (now - last.at))
      last = { at: now, received: progress.received }
      const server =
        mode === 'run' ? `, server streams: ${stats.active} open / ${stats.total} total` : ''
      const line = `progress: ${progress.connected} connected, ${progress.received} events, ${rate} events/s${server}`
      if (live) process.stdout.write(`\r${line}   `)
      else console.log(line)
    },
    Number(process.env.PROGRESS_MS ?? 1000),
  )
  const results = await Promise.all(Array.from({ length: clients }, () => client(url, progress)))
  clearInterval(timer)
  if (live) process.stdout.write('\n')
  const seconds = (performance.now() - started) / 1000
  const completed = results.filter((r) => r.ok).length
  const total = results.reduce((sum, r) => sum + r.received, 0)
  console.log('summary:')
  console.log(
    `  clients:          ${clients} (${completed} completed, ${clients - completed} failed)`,
  )
  console.log(`  events received:  ${total} of ${clients * eventsPerClient}`)
  console.log(`  duration:         ${seconds.toFixed(2)} s`)
  console.log(`  throughput:       ${Math.round(total / seconds)} events/s`)
  console.log(`  per client:       ${(total / clients).toFixed(1)} events`)
  if (mode === 'run')
    console.log(
      `  server:           peak ${stats.peak} open streams, ${stats.total} in all, ${stats.active} open now`,
    )
  const failure = results.find((r) => !r.ok)
  if (failure) console.log(`  first failure:    ${failure.error ?? `${failure.received} events`}`)
  return completed === clients
}

// ---------------------------------------------------------------------------------------------

if (mode === 'server') {
  const server = await startServer(Number(process.env.PORT ?? 8000))
  const { port } = server.address() as AddressInfo
  console.log(`listening on http://127.0.0.1:${port}`)
  setInterval(() => {
    if (stats.active > 0)
      console.log(
        `server: ${stats.active} open, ${stats.total} total, ${stats.eventsSent} events sent`,
      )
  }, 1000).unref()
} else if (mode === 'client') {
  if (!values.url) throw new Error('client mode needs --url http://host:port')
  process.exitCode = (await runClients(values.url)) ? 0 : 1
} else if (mode === 'run') {
  const server = await startServer(Number(process.env.PORT ?? 0))
  const { port } = server.address() as AddressInfo
  const ok = await runClients(`http://127.0.0.1:${port}`)
  server.close()
  process.exitCode = ok ? 0 : 1
} else {
  throw new Error(`unknown mode "${mode}": use run, server or client`)
}
