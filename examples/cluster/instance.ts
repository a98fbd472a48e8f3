/**
 * One instance of the cluster example: a chat with rooms and presence on Express, sharing
 * topics, history, presence and a per-user connection limit with the other instances through
 * Redis. `run.ts` starts three
 * of these behind nginx; one alone works too.
 *
 * Run:  REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/cluster/instance.ts
 *
 * Endpoints (every response carries `X-Instance`, so you can watch the balancing):
 *   GET  /rooms/:room/events?user=U  the room's messages (`event: message`) and presence events
 *                                    (`event: presence`); resumes with `Last-Event-ID`
 *   POST /rooms/:room/messages       `{"user", "text"}` -> 202 `{"id", "instance"}`
 *   GET  /rooms/:room/members        who is in the room, over every instance
 *
 * Environment: PORT (default 8000), REDIS_URL (required), INSTANCE (a name for the logs and
 * the header; default the port), PRESENCE_TTL (ms a dead instance's members still show;
 * default 30000), MAX_PER_USER (open streams per user over the cluster; default 5).
 */

import type { IncomingMessage } from 'node:http'
import express from 'express'
import { Broadcaster, installShutdownHandlers, Presence, sendEventStream } from '../../src/node.ts'
import { RedisBroker, RedisConnectionLimiter, RedisPresenceStore } from '../../src/redis.ts'

const url = process.env.REDIS_URL
if (!url) throw new Error('REDIS_URL is required: the instances share Redis')

const hub = new Broadcaster({ broker: new RedisBroker({ url }) })
const presence = new Presence({
  store: new RedisPresenceStore({ url }),
  broadcaster: hub,
  ttl: Number(process.env.PRESENCE_TTL ?? 30_000),
})

// At most MAX_PER_USER open streams per user over the whole cluster; past it, a 503 with
// Retry-After, whichever instance the request reached.
const limit = new RedisConnectionLimiter<IncomingMessage>({
  url,
  maxPerKey: Number(process.env.MAX_PER_USER ?? 5),
  key: (req) => new URL(req.url ?? '/', 'http://localhost').searchParams.get('user') ?? undefined,
})

const app = express()
app.use(express.json())
let instance = process.env.INSTANCE ?? ''
app.use((_req, res, next) => {
  res.setHeader('X-Instance', instance)
  next()
})

const room = (name: string) => `room:${name}`

app.get('/rooms/:room/events', (req, res) => {
  const topic = room(req.params.room)
  const user = String(req.query.user ?? 'anonymous')
  void sendEventStream(
    req,
    res,
    async (ctx) => {
      // Live first, so the user's own join is among the events it receives; a reconnecting
      // client resumes after ctx.lastEventId, whichever instance it reached.
      const events = hub.subscribe([topic, presence.eventsTopic(topic)], ctx)
      await events.ready
      await presence.join(topic, user, { signal: ctx.signal })
      return events
    },
    { limit },
  )
})

app.post('/rooms/:room/messages', async (req, res) => {
  const { user, text } = req.body as { user?: unknown; text?: unknown }
  if (typeof user !== 'string' || typeof text !== 'string') {
    res.status(400).json({ error: 'expected {"user": string, "text": string}' })
    return
  }
  const id = await hub.publish(room(req.params.room), { event: 'message', data: { user, text } })
  res.status(202).json({ id, instance })
})

app.get('/rooms/:room/members', async (req, res) => {
  res.json(await presence.members(room(req.params.room)))
})

const server = app.listen(Number(process.env.PORT ?? 8000), '127.0.0.1', () => {
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  instance ||= String(port)
  console.log(`listening on http://127.0.0.1:${port}`)
})

installShutdownHandlers(server, {
  // The streams have ended (clients reconnect to another instance): leave presence, then close.
  async onDone() {
    await presence.close()
    await limit.close()
    await hub.close()
    console.log(`instance ${instance} shut down`)
  },
})
