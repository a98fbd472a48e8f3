/**
 * A chat on tRPC v11 subscriptions, fed by an Oven `Broadcaster` (router.ts, docs/trpc.md),
 * served by tRPC's standalone adapter (node:http).
 *
 * Run:  npx tsx examples/trpc/server.ts
 * Then: npx tsx examples/trpc/client.ts hello world          (ada, in the lobby)
 *       npx tsx examples/trpc/client.ts --token bob-token --follow
 *
 * Procedures (tRPC's HTTP protocol, at the root path):
 *   onMessage   subscription `{ room, lastEventId? }`: the room's messages as
 *               `tracked(<Oven id>, { type: 'message', message })`, resumable after a dropped
 *               connection; `{ type: 'reset', reason, topics }` when the history cannot cover
 *               the gap
 *   send        mutation `{ room, text }` -> `{ id }`
 * Both need a token (`ada-token`, `bob-token`): `connectionParams.token` for the subscription,
 * `Authorization: Bearer <token>` for the mutation; without one, tRPC's `UNAUTHORIZED`.
 *
 * With REDIS_URL set, the Broadcaster shares topics, history and ids through Redis: start two
 * servers on two ports, and a client cut from one resumes on the other without loss.
 * SIGTERM or Ctrl+C closes the Broadcaster (open subscriptions end with a retryable error, so
 * clients reconnect, to another instance behind a load balancer) and then the server.
 *
 * Environment: PORT (default 8000), REDIS_URL.
 */

import type { AddressInfo } from 'node:net'
import { createHTTPServer } from '@trpc/server/adapters/standalone'
import { Broadcaster } from '../../src/index.ts'
import { createAppRouter, createContext } from './router.ts'

async function createHub(): Promise<Broadcaster> {
  if (!process.env.REDIS_URL) return new Broadcaster({ history: 1000 })
  // Loaded only when asked for: without REDIS_URL no Redis client is needed.
  const { RedisBroker } = await import('../../src/redis.ts')
  return new Broadcaster({ broker: new RedisBroker({ url: process.env.REDIS_URL }), history: 1000 })
}

const hub = await createHub()
const server = createHTTPServer({ router: createAppRouter({ hub }), createContext })

server.listen(Number(process.env.PORT ?? 8000), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(`listening on http://127.0.0.1:${port}`)
})

let stopping = false
async function shutdown(): Promise<void> {
  if (stopping) return
  stopping = true
  // Subscriptions end first (each procedure throws its retryable error), then the server stops
  // and cuts what is still open. Either way, tRPC's clients reconnect and resume.
  await hub.close()
  server.closeAllConnections()
  server.close(() => console.log('shutdown complete; exiting'))
}
process.once('SIGTERM', () => void shutdown())
process.once('SIGINT', () => void shutdown())
