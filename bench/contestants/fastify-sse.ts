/**
 * @fastify/sse 0.6 on Fastify 5, defaults (heartbeat every 30 s): `await reply.sse.send(text)`
 * per event (it honours backpressure). Broadcast: the replies' SSE contexts by topic.
 */

import type { Server } from 'node:http'
import fastifySse, { type SSEReplyInterface } from '@fastify/sse'
import Fastify, { type FastifyPluginAsync, type FastifyReply } from 'fastify'
import { DEFAULT_TOPIC, listening, runContestant, Topics } from '../lib/contestant.ts'
import { payloads } from '../lib/payload.ts'

const subscribers = new Topics<SSEReplyInterface>()
const app = Fastify({ logger: false })
// The casts: the type-check program also sees Oven's own `reply.sse` augmentation (src/), and
// the CommonJS default export's types; at run time this is @fastify/sse's documented usage.
await app.register(fastifySse as unknown as FastifyPluginAsync)
const sse = (reply: FastifyReply) => (reply as unknown as { sse: SSEReplyInterface }).sse

app.get('/stream', { sse: true }, async (request, reply) => {
  const query = request.query as { n: string; size: string }
  const n = Number(query.n)
  const payload = payloads(Number(query.size))
  const context = sse(reply)
  for (let i = 0; i < n && context.isConnected; i++) await context.send(payload(i))
})
// `sendHeaders` only calls `writeHead`: Node sends the head with the first write, which on an
// idle stream is the heartbeat 30 s later. `flushHeaders` sends it now, as a client expects.
app.get('/idle', { sse: true }, async (_request, reply) => {
  sse(reply).keepAlive()
  sse(reply).sendHeaders()
  reply.raw.flushHeaders()
})
app.get('/sub', { sse: true }, async (request, reply) => {
  const topic = (request.query as { topic?: string }).topic || DEFAULT_TOPIC
  const context = sse(reply)
  context.keepAlive()
  context.sendHeaders()
  reply.raw.flushHeaders()
  subscribers.add(topic, context)
  context.onClose(() => subscribers.delete(topic, context))
})

runContestant({
  listen: async () => {
    await app.ready()
    return listening(app.server as Server)
  },
  publish: (data, topic) => {
    const sends: Promise<void>[] = []
    for (const context of subscribers.of(topic)) sends.push(context.send(data))
    return Promise.all(sends)
  },
  subscribers: () => subscribers.size,
})
