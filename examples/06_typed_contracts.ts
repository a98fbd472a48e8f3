/**
 * 06 — Typed event contracts, served with Hono, described in OpenAPI 3.2.
 *
 * A contract declares a stream's events once: event name → schema of its data (here zod 4;
 * valibot and arktype work the same, through Standard Schema). From it:
 * - the compiler checks every event the source yields (a misspelt name or a wrong field does
 *   not compile);
 * - each event is validated before it reaches the wire, and its data sent as JSON: an invalid
 *   one is never sent, it ends the stream through `onError`;
 * - `eventStreamMediaType` describes the stream in the OpenAPI 3.2 document this server serves
 *   (`itemSchema`, one branch per event, the data's JSON Schema made by zod itself).
 *
 * Run:  npx tsx examples/06_typed_contracts.ts
 * Then: curl http://127.0.0.1:8000/openapi.json
 *       curl -N http://127.0.0.1:8000/jobs/report-7/events
 *
 * Endpoints:
 *   GET /openapi.json           the OpenAPI 3.2 document
 *   GET /jobs/{id}/events       a job's progress: `stage` at each stage, `progress` every tick,
 *                               `log` lines, then `done` with the result's URL; ids are
 *                               `<step>` so a reconnecting client resumes after its last one
 *
 * Environment: PORT (default 8000), TICK_MS (default 200).
 */

import { setTimeout as sleep } from 'node:timers/promises'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { z } from 'zod'
import { sse } from '../src/hono.ts'
import {
  type ContractInput,
  defineContract,
  eventStreamMediaType,
  installShutdownHandlers,
  typedSource,
} from '../src/index.ts'

const tick = Number(process.env.TICK_MS ?? 200)

// ---------------------------------------------------------------------------------------------
// The contract. In an application it has a module of its own, imported by the server and by
// the client, which then reads the same types.

const stages = ['queued', 'rendering', 'uploading'] as const

const jobEvents = defineContract({
  stage: z.object({ name: z.enum(stages), index: z.number().int().min(0) }),
  progress: z.object({ percent: z.number().min(0).max(100) }),
  log: z.string().max(200),
  done: z.object({ url: z.string(), seconds: z.number().nonnegative() }),
})

type JobEvent = ContractInput<typeof jobEvents>

// ---------------------------------------------------------------------------------------------
// The stream: a generator of contract events. `step` numbers them, and is their id.

async function* job(id: string, resumeAfter: number, signal: AbortSignal) {
  const started = Date.now()
  let step = 0
  // Yields `event` as step `step`, unless the client already had it (it sent Last-Event-ID).
  const at = (event: JobEvent): JobEvent | undefined =>
    ++step > resumeAfter ? { ...event, id: String(step) } : undefined
  for (const [index, name] of stages.entries()) {
    const staged = at({ event: 'stage', data: { name, index } })
    if (staged) yield staged
    for (let percent = 25; percent <= 100; percent += 25) {
      await sleep(tick, undefined, { signal })
      const progress = at({ event: 'progress', data: { percent } })
      if (progress) yield progress
    }
    const log = at({ event: 'log', data: `${id}: ${name} finished` })
    if (log) yield log
  }
  const done = at({
    event: 'done',
    data: { url: `/reports/${id}.pdf`, seconds: (Date.now() - started) / 1000 },
  })
  if (done) yield done
}

// ---------------------------------------------------------------------------------------------
// The OpenAPI 3.2 document: the stream's response described from the contract.

const openapi = {
  openapi: '3.2.0',
  info: { title: 'Report jobs', version: '1.0.0' },
  paths: {
    '/jobs/{id}/events': {
      get: {
        summary: "A job's progress, as server-sent events",
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': {
            description: 'The events of the job, until `done`',
            content: { 'text/event-stream': eventStreamMediaType(jobEvents) },
          },
        },
      },
    },
  },
}

const app = new Hono()

app.get('/openapi.json', (c) => c.json(openapi))

app.get('/jobs/:id/events', (c) => {
  const id = c.req.param('id')
  return sse(
    c,
    typedSource(jobEvents, ({ lastEventId, signal }) => {
      const resumeAfter = Number(lastEventId ?? 0)
      return job(id, Number.isSafeInteger(resumeAfter) ? resumeAfter : 0, signal)
    }),
    // An event the contract refuses ends the stream here; the client never sees it.
    { onError: (error) => console.error(`job ${id}: stream ended:`, error) },
  )
})

const server = serve(
  { fetch: app.fetch, port: Number(process.env.PORT ?? 8000), hostname: '127.0.0.1' },
  (info) => {
    console.log(`listening on http://127.0.0.1:${info.port}`)
    console.log(`  curl http://127.0.0.1:${info.port}/openapi.json`)
    console.log(`  curl -N http://127.0.0.1:${info.port}/jobs/report-7/events`)
  },
)
// Ctrl+C or SIGTERM: open streams end cleanly, then the server closes and the process exits.
installShutdownHandlers(server)
