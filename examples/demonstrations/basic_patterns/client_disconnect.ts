/**
 * Demonstration — client disconnect detection and cleanup.
 *
 * Every stream is tracked from the moment it opens until it closes. When a client goes away
 * (Ctrl+C on curl, a closed tab), three things happen at once, with no polling:
 *   1. `ctx.signal` aborts, so a generator awaiting something slow wakes up immediately;
 *   2. the generator's `finally` runs — release what it holds there;
 *   3. `onClose` receives the reason: `disconnect`.
 * The other streams are unaffected.
 *
 * Run:  npx tsx examples/demonstrations/basic_patterns/client_disconnect.ts
 * Then: curl -N http://127.0.0.1:8000/events   (in two terminals; stop one with Ctrl+C)
 *       curl http://127.0.0.1:8000/status
 *
 * Environment: PORT (default 8000), TICK_MS (default 2000).
 */

import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { type CloseReason, type StreamContext, sendEventStream } from '../../../src/node.ts'

const tick = Number(process.env.TICK_MS ?? 2000)

interface Connection {
  id: number
  client: string
  openedAt: number
  events: number
}

const connections = new Map<number, Connection>()
let nextId = 1

function track(req: IncomingMessage): Connection {
  const connection: Connection = {
    id: nextId++,
    client: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
    openedAt: Date.now(),
    events: 0,
  }
  connections.set(connection.id, connection)
  console.log(
    `+ connection ${connection.id} added (${connection.client}). total: ${connections.size}`,
  )
  return connection
}

function untrack(connection: Connection, reason: CloseReason): void {
  connections.delete(connection.id)
  const seconds = ((Date.now() - connection.openedAt) / 1000).toFixed(1)
  console.log(
    `- connection ${connection.id} removed (${reason}) after ${seconds} s and ${connection.events} events. total: ${connections.size}`,
  )
}

function events(connection: Connection) {
  return async function* ({ signal }: StreamContext<IncomingMessage>) {
    try {
      for (let i = 1; i < 100; i++) {
        connection.events++
        yield { id: String(i), data: `Event ${i} - client ${connection.client}` }
        // The disconnect interrupts this wait: no need to poll "is the client still there?".
        await sleep(tick, undefined, { signal })
      }
    } finally {
      console.log(
        `  cleanup done for connection ${connection.id} (${String(signal.reason ?? 'done')})`,
      )
    }
  }
}

const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname
  if (path === '/events') {
    const connection = track(req)
    void sendEventStream(req, res, events(connection), {
      onClose: (reason) => untrack(connection, reason),
    })
    return
  }
  if (path === '/status') {
    const now = Date.now()
    const active = [...connections.values()].map((c) => ({
      id: c.id,
      client: c.client,
      seconds: (now - c.openedAt) / 1000,
      events: c.events,
    }))
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ active: active.length, connections: active }))
    return
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('try /events or /status\n')
})

server.listen(Number(process.env.PORT ?? 8000), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(`listening on http://127.0.0.1:${port}`)
  console.log(`  curl -N http://127.0.0.1:${port}/events   (then Ctrl+C)`)
})
