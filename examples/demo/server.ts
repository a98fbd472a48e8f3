/**
 * The live demo: `npm start`, then open the printed URL in two tabs.
 *
 * One page, four panels, all fed by ONE event stream per tab (`/events`):
 *   clock   a tick every CLOCK_MS, made per connection
 *   chat    messages between tabs, through the Broadcaster (topic `chat`)
 *   job     a long job's progress bar, through the Broadcaster (topic `job`)
 *   stats   this server's connection statistics, every STATS_MS
 *   operator view: Oven's OpenTelemetry metrics (`oven-sse/otel`), every STATS_MS, read the
 *           way production scrapes them; `GET /metrics` serves the same as Prometheus text
 *
 * The page reads the stream with Oven's own client, `oven-sse/client` (served as `/client.js`,
 * bundled from the source on first request; an app imports it and lets its bundler do this):
 * it sends `Last-Event-ID` itself, on its first connection as on every reconnect.
 *
 * Why one stream: browsers allow about six HTTP/1.1 connections per host, shared by every tab.
 * Four streams per tab would stall the third tab. The stream merges its sources through a
 * bounded channel: the clock, the stats and the Broadcaster subscription each send into it.
 *
 * A page that opens (a new tab, or a reload) first receives a `snapshot`: the recent chat and the
 * job's state, as this process's board has them, with the board's position as its id. The stream
 * then resumes from that position, so the page misses nothing published while it loaded and
 * shows what a tab that never left shows. Chat and job events carry the Broadcaster's ids, and
 * so does the snapshot: a tab's `Last-Event-ID` always names a Broadcaster position, and a
 * reconnecting tab (network blip, server restart, the page's "drop connection" button) gets what
 * it missed from the Broadcaster's history, without gaps and without a second snapshot.
 *
 * Stopping: SIGTERM or Ctrl+C (also through `npm start`, whose script `exec`s node so the signal
 * reaches this process) sends every open stream an `event: shutdown` farewell, ends the streams,
 * stops a running job, closes the server and the Broadcaster, and the process exits with code 0.
 *
 * No external service is needed. With REDIS_URL set, the Broadcaster uses Redis, so several
 * processes serve the same chat and job:
 *   REDIS_URL=redis://127.0.0.1:6379 PORT=8001 npm start
 *   REDIS_URL=redis://127.0.0.1:6379 PORT=8002 npm start
 *
 * Environment: PORT (default 8000), HOST (default 127.0.0.1), REDIS_URL, REDIS_PREFIX (default
 * oven-demo), CLOCK_MS (1000), STATS_MS (1000), JOB_STEP_MS (150).
 */

import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import {
  Broadcaster,
  type ContentItem,
  createChannel,
  defaultRegistry,
  formatEventId,
  installShutdownHandlers,
  parseEventId,
  type ServerSentEvent,
  type StreamContext,
  sendEventStream,
} from '../../src/node.ts'
import { operatorView, serveMetrics, stopMetrics } from './metrics.ts'

const env = process.env
const clockEvery = Number(env.CLOCK_MS ?? 1000)
const statsEvery = Number(env.STATS_MS ?? 1000)
const jobStep = Number(env.JOB_STEP_MS ?? 150)
const publicDir = fileURLToPath(new URL('./public/', import.meta.url))

// ---------------------------------------------------------------------------------------------
// The Broadcaster: in memory by default, Redis when REDIS_URL is set.

async function createHub(): Promise<Broadcaster> {
  if (!env.REDIS_URL) return new Broadcaster({ history: 1000 })
  // Loaded only when asked for: without REDIS_URL the demo needs no Redis client at all.
  const { RedisBroker } = await import('../../src/redis.ts')
  const broker = new RedisBroker({ url: env.REDIS_URL, prefix: env.REDIS_PREFIX ?? 'oven-demo' })
  return new Broadcaster({ broker, history: 1000 })
}

const hub = await createHub()
const instance = `pid ${process.pid}`
const startedAt = Date.now()
const stats = { tabs: 0, connections: 0, eventsSent: 0, messages: 0, jobs: 0 }
/** Aborted when shutdown has finished: the board stops following the Broadcaster. */
const stopped = new AbortController()

// ---------------------------------------------------------------------------------------------
// The board: what a page that opens needs to show (the last CHAT_KEPT chat messages, the job's
// last state), folded from the Broadcaster's chat and job events by one subscription of this
// process. `position` is the id up to which every chat and job event is in the board, so a
// page given the board resumes from `position` and cannot miss or repeat an event.

/** How many chat messages the board keeps; the page shows as many (app.js `CHAT_KEPT`). */
const CHAT_KEPT = 100

interface ChatMessage {
  id: string
  user: string
  text: string
  at: string
  instance: string
}
interface JobState {
  id: string
  jobId: string
  percent: number
  stage: string
  instance: string
}

const board: { messages: ChatMessage[]; job: JobState | undefined; position: string } = {
  messages: [],
  job: undefined,
  position: '',
}

function fold(event: ServerSentEvent): void {
  const id = event.id as string
  board.position = id
  if (event.event === 'chat') {
    board.messages.push({ id, ...(JSON.parse(event.data as string) as Omit<ChatMessage, 'id'>) })
    if (board.messages.length > CHAT_KEPT) board.messages.shift()
  } else if (event.event === 'job') {
    board.job = { id, ...(JSON.parse(event.data as string) as Omit<JobState, 'id'>) }
  }
  // An `oven-reset` (the history did not reach back to where the board started, or was lost)
  // only moves the position: what the board has is all it can have.
}

/**
 * Follows the chat and job topics from the board's position, which starts at the beginning of
 * the Broadcaster's history (with Redis, the board of a process started later thus has what
 * the others published before it, as far as the history reaches).
 */
async function followBoard(): Promise<void> {
  for (let attempt = 1; !stopped.signal.aborted; attempt++) {
    let failure: unknown = 'ended'
    try {
      const subscription = hub.subscribe(['chat', 'job'], {
        lastEventId: board.position,
        signal: stopped.signal,
      })
      for await (const event of subscription) fold(event)
    } catch (error) {
      failure = error
    }
    if (stopped.signal.aborted || defaultRegistry.closing) return
    // Ended by the Broadcaster (it fell a whole queue behind) or failed (Redis unreachable):
    // resume from where the board is, a little later each time.
    console.error(`demo: the board's subscription stopped (${failure}); resuming`)
    await sleep(Math.min(1000 * attempt, 10_000), undefined, { signal: stopped.signal })
  }
}

// ---------------------------------------------------------------------------------------------
// One stream per tab: clock + stats + the Broadcaster subscription, merged through a channel.

async function clock(send: (item: ContentItem) => Promise<void>, signal: AbortSignal) {
  while (!signal.aborted) {
    await send({ event: 'clock', data: { time: new Date().toISOString(), instance } })
    // Ticks land on whole intervals, so every tab's clock changes at the same moment.
    await sleep(clockEvery - (Date.now() % clockEvery), undefined, { signal })
  }
}

function serverStats() {
  return {
    instance,
    redis: Boolean(env.REDIS_URL),
    uptime: Math.round((Date.now() - startedAt) / 1000),
    tabs: stats.tabs,
    openStreams: defaultRegistry.size,
    connections: stats.connections,
    // The board's own subscription is not a tab.
    chatSubscribers: Math.max(0, hub.subscribers('chat') - 1),
    eventsSent: stats.eventsSent,
    messages: stats.messages,
    jobs: stats.jobs,
  }
}

async function statistics(send: (item: ContentItem) => Promise<void>, signal: AbortSignal) {
  while (!signal.aborted) {
    await send({ event: 'stats', data: serverStats() })
    await send({ event: 'metrics', data: await operatorView() })
    await sleep(statsEvery, undefined, { signal })
  }
}

async function broadcasts(
  send: (item: ContentItem) => Promise<void>,
  { signal, lastEventId }: StreamContext,
) {
  if (lastEventId) {
    for await (const event of hub.subscribe(['chat', 'job'], { lastEventId, signal })) {
      await send(event)
    }
    return
  }
  // A page that opens: first the state so far, then everything after it. Copied now (the
  // event is serialized later, when the stream writes it), so the snapshot and the position
  // it was taken at belong together.
  const position = board.position
  const data = { messages: [...board.messages], job: board.job ?? null }
  const subscription = hub.subscribe(['chat', 'job'], { lastEventId: position, signal })
  await send({ event: 'snapshot', id: position, data })
  for await (const event of subscription) await send(event)
}

function events(req: IncomingMessage, res: ServerResponse): void {
  const channel = createChannel<ContentItem>(64)
  const send = async (item: ContentItem) => {
    await channel.send(item)
    stats.eventsSent++
  }
  stats.tabs++
  stats.connections++
  void sendEventStream(req, res, channel, {
    // Browsers reconnect after `retry` ms when the connection drops.
    retry: 1000,
    async dataSender(ctx) {
      try {
        await Promise.all([
          broadcasts(send, ctx),
          clock(send, ctx.signal),
          statistics(send, ctx.signal),
        ])
      } catch (error) {
        // When the tab goes away, ctx.signal aborts and every loop stops with an abort error,
        // or finds the channel closed: expected. Anything else ends the stream (reason error),
        // and the browser reconnects.
        if (!ctx.signal.aborted) throw error
        // On shutdown the stream may still send during the grace period: say goodbye, so the
        // page can tell a stopping server from a network failure.
        if (ctx.signal.reason === 'shutdown') {
          await channel.send({ event: 'shutdown', data: { instance } })
        }
      } finally {
        channel.close()
      }
    },
    onClose() {
      stats.tabs--
    },
  })
}

// ---------------------------------------------------------------------------------------------
// Actions: post a chat message, start a job

async function readJson(req: IncomingMessage, limit = 4096): Promise<unknown> {
  let body = ''
  for await (const chunk of req) {
    body += chunk
    if (body.length > limit) throw new Error('body too large')
  }
  return JSON.parse(body)
}

async function postChat(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = (await readJson(req).catch(() => undefined)) as
    | { user?: unknown; text?: unknown }
    | undefined
  const user = typeof body?.user === 'string' ? body.user.trim().slice(0, 40) : ''
  const text = typeof body?.text === 'string' ? body.text.trim().slice(0, 500) : ''
  if (!user || !text) {
    json(res, 400, { error: 'expected {"user": string, "text": string}' })
    return
  }
  const id = await hub.publish('chat', {
    event: 'chat',
    data: { user, text, at: new Date().toISOString(), instance },
  })
  stats.messages++
  json(res, 202, { id })
}

let runningJob: { jobId: string; done: Promise<void> } | undefined
async function runJob(jobId: string): Promise<void> {
  const stages = ['queued', 'fetching', 'processing', 'rendering', 'uploading']
  for (let percent = 0; percent <= 100; percent += 2) {
    // Shutdown has begun (the streams are closing, or closed and the demo is stopping): stop
    // here, before the Broadcaster closes under the next publish.
    if (defaultRegistry.closing || stopped.signal.aborted) return
    const stage = percent === 100 ? 'done' : stages[Math.floor((percent / 100) * stages.length)]
    await hub.publish('job', { event: 'job', data: { jobId, percent, stage, instance } })
    if (percent < 100) await sleep(jobStep)
  }
}

function postJob(res: ServerResponse): void {
  if (runningJob) {
    json(res, 409, { error: 'a job is already running', jobId: runningJob.jobId })
    return
  }
  const jobId = `job-${++stats.jobs}-${process.pid}`
  const done = runJob(jobId)
    .catch((error) => console.error('job failed:', error))
    .finally(() => {
      runningJob = undefined
    })
  runningJob = { jobId, done }
  json(res, 202, { jobId })
}

// ---------------------------------------------------------------------------------------------
// HTTP

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

/** `oven-sse/client` for the page, bundled from the source once, on first request. */
let clientBundle: Promise<string> | undefined
function serveClient(res: ServerResponse): Promise<void> {
  clientBundle ??= build({
    entryPoints: [fileURLToPath(new URL('../../src/client.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
  }).then((result) => result.outputFiles[0]!.text)
  return clientBundle.then((text) => {
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(text)
  })
}

const files: Record<string, [string, string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
}

async function serveFile(res: ServerResponse, [name, type]: [string, string]): Promise<void> {
  const body = await readFile(publicDir + name)
  res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' }).end(body)
}

const server = createServer((req, res) => {
  const { pathname } = new URL(req.url ?? '/', 'http://localhost')
  const route = `${req.method} ${pathname}`
  const handle = async () => {
    if (route === 'GET /events') return events(req, res)
    if (route === 'POST /chat') return postChat(req, res)
    if (route === 'POST /job') return postJob(res)
    if (route === 'GET /stats') return json(res, 200, serverStats())
    if (route === 'GET /metrics') return serveMetrics(req, res)
    if (route === 'GET /client.js') return serveClient(res)
    const file = req.method === 'GET' ? files[pathname] : undefined
    if (file) return serveFile(res, file)
    json(res, 404, { error: `no route for ${route}` })
  }
  handle().catch((error) => {
    console.error(error)
    if (!res.headersSent) json(res, 500, { error: 'internal error' })
    else res.destroy()
  })
})

installShutdownHandlers(server, {
  // Time for each stream's farewell event.
  grace: 500,
  // Exit by ending: once the server, the job and the Broadcaster are closed nothing is left,
  // so the process ends by itself with code 0 (re-raising the signal would end it with 143 or
  // 130, which `npm start` reports as a failure). Anything left open would keep it running,
  // and the demo's test would notice.
  exit: false,
  // Awaited before the handlers are removed: a second Ctrl+C meanwhile (under `npm start` one
  // reaches this process twice, from the terminal and from npm) is ignored, not fatal.
  async onDone(error) {
    if (error) {
      console.error('demo: shutdown failed:', error)
      process.exitCode = 1
    }
    console.log('demo: server closed; stopping the job and the Broadcaster')
    try {
      stopped.abort()
      await runningJob?.done
      await hub.close()
      await stopMetrics()
      console.log('demo: stopped')
    } catch (failure) {
      console.error('demo: closing the Broadcaster failed:', failure)
      process.exitCode = 1
    }
  },
})

// The board starts at the beginning of the history before the first page can ask for it. Any
// publish tells the history's epoch, and position 0 of an epoch is "before the first event".
const started = await hub.publish('demo', { event: 'started', data: { instance } })
board.position = formatEventId((parseEventId(started) as { epoch: string }).epoch, 0)
void followBoard().catch((error: unknown) => {
  if (!stopped.signal.aborted) console.error('demo: the board stopped:', error)
})

const host = env.HOST ?? '127.0.0.1'
server.listen(Number(env.PORT ?? 8000), host, () => {
  const { port } = server.address() as AddressInfo
  console.log(`listening on http://${host}:${port}`)
  console.log(
    `demo: open http://${host}:${port}/ in two tabs (${env.REDIS_URL ? 'Redis broker' : 'in-memory broker'})`,
  )
})
