/**
 * Demonstration — a typed event protocol, served with Hono.
 *
 * An event stream is a protocol between your server and your client: event names and the
 * shape of each one's data. Write it down once as a type, and let the compiler check every
 * event the server sends (and, with the same type, every event the client reads).
 *
 * This example also shows the web-standard path: Hono on `@hono/node-server`, returning an
 * `EventSourceResponse` (the same code runs on Bun, Deno and Workers).
 *
 * Run:  npx tsx examples/demonstrations/advanced_patterns/custom_protocols.ts
 * Then: curl -N http://127.0.0.1:8000/protocols/task
 *       curl -N http://127.0.0.1:8000/protocols/health
 *
 * Every stream starts with `event: hello` (the protocol and the event names it uses), then:
 *   task     `task_progress` from 0 to 100 % through the stages, then `task_complete`; the
 *            ids let a reconnecting client resume where it left off
 *   health   `health_update` for each service, every TICK_MS, for CYCLES cycles
 * An unknown protocol is refused before any stream starts: 400 with a JSON body.
 *
 * Environment: PORT (default 8000), TICK_MS (default 500), CYCLES (default 20).
 */

import { setTimeout as sleep } from 'node:timers/promises'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import {
  EventSourceResponse,
  installShutdownHandlers,
  ServerSentEvent,
  type StreamContext,
} from '../../../src/index.ts'

const tick = Number(process.env.TICK_MS ?? 500)
const cycles = Number(process.env.CYCLES ?? 20)

// ---------------------------------------------------------------------------------------------
// The protocol: every event name and the shape of its data. Share this type with the client.

/** The stages a task goes through. A string union serializes as itself (an enum might not). */
export type Stage = 'queued' | 'fetching' | 'processing' | 'uploading' | 'done'

export interface Protocol {
  hello: { protocol: ProtocolName; version: 1; events: Array<keyof Protocol> }
  task_progress: { taskId: string; stage: Stage; percent: number }
  task_complete: { taskId: string; durationMs: number; result: string }
  health_update: {
    service: string
    status: 'ok' | 'degraded' | 'down'
    cpu: number
    memoryMb: number
    latencyMs: number
  }
}

export type ProtocolName = 'task' | 'health'

/** One event of the protocol, checked by the compiler: the data must match the name. */
function message<K extends keyof Protocol>(
  event: K,
  data: Protocol[K],
  id?: string,
): ServerSentEvent {
  return new ServerSentEvent(id === undefined ? { event, data } : { event, data, id })
}

/**
 * On the client, the same type gives typed listeners:
 *
 *   const source = new EventSource('/protocols/task')
 *   on(source, 'task_progress', (data) => bar.value = data.percent)   // data: Protocol['task_progress']
 *
 *   function on<K extends keyof Protocol>(source: EventSource, event: K, listener: (data: Protocol[K]) => void) {
 *     source.addEventListener(event, (e) => listener(JSON.parse((e as MessageEvent).data)))
 *   }
 */

// ---------------------------------------------------------------------------------------------
// The streams

const stages: Stage[] = ['queued', 'fetching', 'processing', 'uploading', 'done']

async function* task({ signal, lastEventId }: StreamContext<Request | undefined>) {
  const taskId = 'task-1'
  const started = performance.now()
  yield message('hello', {
    protocol: 'task',
    version: 1,
    events: ['task_progress', 'task_complete'],
  })
  // The id is the percentage: a client that reconnects resumes after what it has seen.
  const from = lastEventId && /^\d+$/.test(lastEventId) ? Number(lastEventId) + 10 : 0
  for (let percent = from; percent <= 100; percent += 10) {
    const stage = stages[Math.min(stages.length - 1, Math.floor(percent / 25))] as Stage
    yield message('task_progress', { taskId, stage, percent }, String(percent))
    await sleep(tick / 5, undefined, { signal })
  }
  yield message('task_complete', {
    taskId,
    durationMs: Math.round(performance.now() - started),
    result: 's3://bucket/report.pdf',
  })
}

async function* health({ signal }: StreamContext<Request | undefined>) {
  yield message('hello', { protocol: 'health', version: 1, events: ['health_update'] })
  const services = ['api', 'database', 'cache', 'queue']
  for (let cycle = 1; cycle <= cycles; cycle++) {
    for (const [index, service] of services.entries()) {
      // A deterministic wave stands in for real metrics.
      const load = (Math.sin(cycle + index) + 1) / 2
      const status = load > 0.9 ? 'degraded' : 'ok'
      yield message('health_update', {
        service,
        status,
        cpu: Math.round(load * 100),
        memoryMb: 256 + Math.round(load * 512),
        latencyMs: Math.round(5 + load * 120),
      })
    }
    await sleep(tick, undefined, { signal })
  }
}

const protocols: Record<ProtocolName, typeof task> = { task, health }

const app = new Hono()
app.get('/protocols/:name', (c) => {
  const name = c.req.param('name')
  if (!Object.hasOwn(protocols, name)) {
    // Refuse before streaming: EventSource treats a non-200 answer as final and stops.
    return c.json({ error: `unknown protocol "${name}"`, supported: Object.keys(protocols) }, 400)
  }
  return new EventSourceResponse(protocols[name as ProtocolName], { request: c.req.raw })
})

const server = serve(
  { fetch: app.fetch, port: Number(process.env.PORT ?? 8000), hostname: '127.0.0.1' },
  (info) => {
    console.log(`listening on http://127.0.0.1:${info.port}`)
    console.log(`  curl -N http://127.0.0.1:${info.port}/protocols/task`)
  },
)
// Ctrl+C or SIGTERM: open streams end cleanly, then the server closes and the process exits.
installShutdownHandlers(server)
