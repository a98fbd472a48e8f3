/**
 * Hono's `streamSSE` on `@hono/node-server`: `await stream.writeSSE({ data })` per event.
 * Broadcast: the streams by topic, each written with `writeSSE`.
 */

import type { Server } from 'node:http'
import { createAdaptorServer } from '@hono/node-server'
import { Hono } from 'hono'
import { type SSEStreamingApi, streamSSE } from 'hono/streaming'
import { DEFAULT_TOPIC, listening, runContestant, Topics } from '../lib/contestant.ts'
import { payloads } from '../lib/payload.ts'

const subscribers = new Topics<SSEStreamingApi>()
const app = new Hono()

const untilAborted = (stream: SSEStreamingApi) =>
  new Promise<void>((resolve) => stream.onAbort(resolve))

app.get('/stream', (c) =>
  streamSSE(c, async (stream) => {
    const n = Number(c.req.query('n'))
    const payload = payloads(Number(c.req.query('size')))
    for (let i = 0; i < n && !stream.aborted; i++) await stream.writeSSE({ data: payload(i) })
  }),
)
app.get('/idle', (c) => streamSSE(c, untilAborted))
app.get('/sub', (c) =>
  streamSSE(c, async (stream) => {
    const topic = c.req.query('topic') || DEFAULT_TOPIC
    subscribers.add(topic, stream)
    await untilAborted(stream)
    subscribers.delete(topic, stream)
  }),
)

runContestant({
  listen: () => listening(createAdaptorServer({ fetch: app.fetch }) as Server),
  publish: (data, topic) => {
    const writes: Promise<void>[] = []
    for (const stream of subscribers.of(topic)) writes.push(stream.writeSSE({ data }))
    return Promise.all(writes)
  },
  subscribers: () => subscribers.size,
})
