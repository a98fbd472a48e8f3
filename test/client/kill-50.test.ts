/**
 * The client's promise under fire: a 1 000-event stream from Oven, read through a TCP proxy that
 * kills the connection 50 times at seeded random byte offsets — inside the HTTP head, inside a
 * line, inside a multi-byte character, between events. Every reconnect sends `Last-Event-ID`;
 * Oven's source resumes after it. What the client delivers equals what the server produced: in
 * order, nothing missing, nothing twice, no half event.
 */

import type { IncomingMessage } from 'node:http'
import { createServer, type Server, Socket } from 'node:net'
import { afterEach, describe, expect, test } from 'vitest'
import { connect } from '../../src/client.ts'
import { EventSourceResponse, type StreamContext } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { closeAllServers, nodeServer, webServer } from '../helpers/servers.ts'
import { seeded } from '../runs/runs-server.ts'
import { readAll } from './support.ts'

const EVENTS = 1000
const KILLS = 50

/** Event `i`: a line break and a 4-byte character in its data, so cuts can land inside both. */
const payload = (i: number) => `event ${i} 🦄\n${'x'.repeat(i % 37)}`

/** The source both transports serve: events after `Last-Event-ID`, then `oven-end`. */
async function* resumable({ lastEventId }: StreamContext<unknown>) {
  for (let i = Number(lastEventId ?? 0) + 1; i <= EVENTS; i++) {
    yield { id: String(i), data: payload(i) }
  }
  yield { event: 'oven-end', data: '{"reason":"done"}' }
}

const proxies: Server[] = []
afterEach(async () => {
  for (const proxy of proxies.splice(0)) await new Promise((done) => proxy.close(done))
  await closeAllServers()
})

/**
 * A TCP proxy to `port` that cuts each of the first {@link KILLS} connections after a seeded
 * random number of response bytes (1 to 1 200, head included), destroying both sides.
 */
async function killingProxy(port: number, seed: number) {
  const random = seeded(seed)
  const state = { connections: 0, kills: 0, sockets: new Set<Socket>() }
  const proxy = createServer((client) => {
    const index = state.connections++
    const budget = index < KILLS ? 1 + Math.floor(random() * 1200) : Number.POSITIVE_INFINITY
    let passed = 0
    const upstream = new Socket()
    for (const socket of [client, upstream]) {
      state.sockets.add(socket)
      socket.on('close', () => state.sockets.delete(socket))
      socket.on('error', () => {})
    }
    upstream.connect(port, '127.0.0.1')
    client.pipe(upstream)
    upstream.on('data', (chunk: Buffer) => {
      if (passed + chunk.length < budget) {
        passed += chunk.length
        client.write(chunk)
        return
      }
      client.write(chunk.subarray(0, budget - passed))
      passed = budget
      state.kills++
      upstream.destroy()
      client.destroy()
    })
    upstream.on('end', () => client.end())
    client.on('close', () => upstream.destroy())
  })
  proxies.push(proxy)
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const address = proxy.address() as { port: number }
  return { url: `http://127.0.0.1:${address.port}/`, state }
}

describe.each([
  ['node', 1],
  ['web', 2],
] as const)('against the %s transport (seed %i)', (kind, seed) => {
  test(`${KILLS} kills during a ${EVENTS}-event stream: the client's output equals the server's`, async () => {
    const server =
      kind === 'node'
        ? await nodeServer((req, res) => {
            void sendEventStream(req, res, (ctx: StreamContext<IncomingMessage>) => resumable(ctx))
          })
        : await webServer(
            (request) => new EventSourceResponse((ctx) => resumable(ctx), { request }),
          )
    const proxy = await killingProxy(server.port, seed)
    const resumedFrom: string[] = []
    const events = await readAll(
      connect(proxy.url, {
        retryDelay: 1,
        jitter: 0,
        headers: (info) => {
          if (info.attempt > 0) resumedFrom.push(info.lastEventId)
          return {}
        },
      }),
      30_000,
    )
    const expected = Array.from({ length: EVENTS }, (_, k) => ({
      id: String(k + 1),
      data: payload(k + 1),
    }))
    expect(events.slice(0, -1).map(({ id, data }) => ({ id, data }))).toEqual(expected)
    expect(events.at(-1)).toMatchObject({ event: 'oven-end', data: '{"reason":"done"}' })
    expect(proxy.state.kills).toBe(KILLS)
    expect(resumedFrom).toHaveLength(KILLS)
    // The kills landed all over the stream, not only before its first event.
    const positions = new Set(resumedFrom.filter((id) => id !== ''))
    expect(positions.size).toBeGreaterThan(KILLS / 2)
  }, 60_000)
})
