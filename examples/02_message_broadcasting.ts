/**
 * 02 — Broadcasting: one event, many clients. A small chat with rooms.
 *
 * The Broadcaster turns topics into per-client subscriptions. Publish once; every subscriber
 * of the topic receives the same bytes (the event is encoded once). Each event gets an id, and
 * the Broadcaster keeps a bounded history, so a client that reconnects with `Last-Event-ID`
 * receives what it missed — no gaps, no duplicates. Subscriptions end, and presence counts go
 * down, the moment a client disconnects (the subscription follows `ctx.signal`).
 *
 * Run:  npx tsx examples/02_message_broadcasting.ts
 * Then: curl -N http://127.0.0.1:8000/events?room=general              (in two terminals)
 *       curl -X POST http://127.0.0.1:8000/send -d '{"user":"ada","text":"hello"}'
 *       curl -N -H 'Last-Event-ID: <an id you saw>' http://127.0.0.1:8000/events?room=general
 *       curl http://127.0.0.1:8000/status
 *
 * Endpoints:
 *   GET  /events?room=R   the room's messages as `event: message`, with ids; `event: presence`
 *                         when someone joins or leaves
 *   POST /send            `{"user", "text", "room"?}` -> 202 `{"id", "subscribers"}`
 *   GET  /status          subscribers per room
 *
 * Environment: PORT (default 8000).
 */

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Broadcaster, sendEventStream } from '../src/node.ts'

// History: how many events a reconnecting client can catch up on. Queue: how far one slow
// client may fall behind before the overflow policy applies (it never slows the others).
const hub = new Broadcaster({ history: 1000, queue: 256, overflow: 'drop-oldest' })
const rooms = new Set(['general'])

const topic = (room: string) => `room:${room}`

function roomOf(url: URL): string | undefined {
  const room = url.searchParams.get('room') ?? 'general'
  return /^[\w-]{1,32}$/.test(room) ? room : undefined
}

async function presence(room: string, change: 'joined' | 'left'): Promise<void> {
  // Presence is published like a message, so it is in the history too. `publish` rejects when
  // the broker cannot take the event (with Redis: unreachable); a presence update is not worth
  // failing a request for, so it is only logged.
  await hub
    .publish(topic(room), {
      event: 'presence',
      data: { room, change, subscribers: hub.subscribers(topic(room)) },
    })
    .catch((error: unknown) => console.error('presence not published:', error))
}

function subscribe(req: IncomingMessage, res: ServerResponse, room: string): void {
  rooms.add(room)
  void sendEventStream(
    req,
    res,
    (ctx) => {
      // `lastEventId` comes from the Last-Event-ID header (or `?lastEventId=`): the history
      // replays everything after it before live events. `signal` ends the subscription.
      const subscription = hub.subscribe([topic(room)], {
        lastEventId: ctx.lastEventId,
        signal: ctx.signal,
      })
      void presence(room, 'joined')
      return subscription
    },
    {
      onClose: () => void presence(room, 'left'),
    },
  )
}

async function send(req: IncomingMessage, res: ServerResponse): Promise<void> {
  let body = ''
  for await (const chunk of req) {
    body += chunk
    if (body.length > 16_384) break // a chat message is small; do not buffer more
  }
  let message: { user?: unknown; text?: unknown; room?: unknown }
  try {
    message = JSON.parse(body)
  } catch {
    message = {}
  }
  const room = typeof message.room === 'string' ? message.room : 'general'
  if (
    typeof message.user !== 'string' ||
    typeof message.text !== 'string' ||
    !/^[\w-]{1,32}$/.test(room)
  ) {
    res.writeHead(400, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: 'expected {"user": string, "text": string, "room"?: string}' }))
    return
  }
  const id = await hub.publish(topic(room), {
    event: 'message',
    data: { user: message.user, text: message.text, at: new Date().toISOString() },
  })
  res.writeHead(202, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ id, subscribers: hub.subscribers(topic(room)) }))
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const route = `${req.method} ${url.pathname}`
  if (route === 'GET /events') {
    const room = roomOf(url)
    if (room) subscribe(req, res, room)
    else res.writeHead(400, { 'content-type': 'text/plain' }).end('bad room name\n')
    return
  }
  if (route === 'POST /send') {
    send(req, res).catch((error) => {
      console.error(error)
      if (!res.headersSent) res.writeHead(500).end()
    })
    return
  }
  if (route === 'GET /status') {
    // Rooms nobody listens to any more are forgotten, so the list stays bounded.
    for (const room of rooms) {
      if (room !== 'general' && hub.subscribers(topic(room)) === 0) rooms.delete(room)
    }
    const counts = Object.fromEntries(
      [...rooms].map((room) => [room, hub.subscribers(topic(room))]),
    )
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ subscribers: hub.subscribers(), rooms: counts }))
    return
  }
  res
    .writeHead(404, { 'content-type': 'text/plain' })
    .end('try GET /events, POST /send, GET /status\n')
})

server.listen(Number(process.env.PORT ?? 8000), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(`listening on http://127.0.0.1:${port}`)
  console.log(`  curl -N http://127.0.0.1:${port}/events?room=general`)
  console.log(`  curl -X POST http://127.0.0.1:${port}/send -d '{"user":"ada","text":"hello"}'`)
})
