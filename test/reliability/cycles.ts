/**
 * The connect/disconnect cycle driver shared by the fast leak test (test/reliability) and the
 * 10 000-cycle stress test (test/stress). Clients leave at random moments chosen from a seeded
 * generator, so a failure can be replayed: before the head, right after it, in the middle of an
 * event, during a ping, while a write waits on `sendTimeout` (before and after it fires), and
 * streams that end on their own or with an error.
 */

import type { IncomingMessage, ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import {
  type CloseReason,
  ConnectionLimiter,
  EventSourceResponse,
  StreamRegistry,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { shortDurations } from '../../src/testing.ts'
import { nodeServer, type TestServer, webServer } from '../helpers/servers.ts'
import { openStream, stuckClient } from './support.ts'

/** Where a client leaves, or how its stream ends. */
export const MOMENTS = [
  'before-head',
  'slow-open',
  'after-head',
  'mid-event',
  'during-ping',
  'in-send-timeout',
  'send-timeout',
  'done',
  'error',
] as const
export type Moment = (typeof MOMENTS)[number]

/** A small seeded PRNG (mulberry32): the same seed replays the same run. */
export function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const BIG = 'x'.repeat(48 * 1024)

/** The server side: one stream per request, its behaviour chosen by the `m` query parameter. */
function content(moment: string) {
  return async function* ({ signal }: { signal: AbortSignal }) {
    if (moment === 'slow-open') await delay(30, undefined, { signal })
    if (moment === 'done') {
      yield 'a'
      yield { event: 'e', id: '1', data: 'b' }
      return
    }
    if (moment === 'error') {
      yield 'a'
      throw new Error('source failed on purpose')
    }
    if (moment === 'during-ping') {
      yield 'hello'
      // Idle: only pings flow, every 5 ms, until the client leaves.
      await delay(10_000, undefined, { signal })
      return
    }
    // Big events, as fast as the client takes them.
    for (let i = 0; i < 10_000 && !signal.aborted; i++) yield { id: String(i), data: BIG }
  }
}

/** A server whose streams record every onClose call per request number. */
export async function cycleServer(transport: 'node' | 'web') {
  const registry = new StreamRegistry()
  // A small per-key cap (the key is the moment) turns some requests away under churn: slots
  // must come back exactly once whatever the mix of 503s and ends.
  const limiter = new ConnectionLimiter<unknown>({
    max: 100_000,
    maxPerKey: 2,
    key: (request) =>
      new URL((request as { url: string }).url, 'http://x').searchParams.get('m') ?? '',
  })
  const closes = new Map<number, CloseReason[]>()
  // Every error a stream reports, and every rejection of sendEventStream: the run checks them.
  const errors: unknown[] = []
  const late: Array<{ n: number; reason: CloseReason }> = []
  const optionsFor = (n: number, moment: string) => {
    closes.set(n, [])
    return shortDurations({
      registry,
      limit: limiter,
      ping: moment === 'during-ping' ? 5 : 1000,
      sendTimeout: moment === 'send-timeout' || moment === 'in-send-timeout' ? 60 : 0,
      onError: (error: unknown) => errors.push(error),
      onClose: (reason: CloseReason) => {
        const list = closes.get(n)
        // Once a run's closes are checked and cleared, any onClose is a late, second one.
        if (list) list.push(reason)
        else late.push({ n, reason })
      },
    })
  }
  const parse = (url: string) => {
    const query = new URL(url, 'http://x').searchParams
    return { n: Number(query.get('n')), moment: query.get('m') ?? 'done' }
  }
  let server: TestServer
  if (transport === 'node') {
    server = await nodeServer((req: IncomingMessage, res: ServerResponse) => {
      const { n, moment } = parse(req.url ?? '/')
      sendEventStream(req, res, content(moment), optionsFor(n, moment)).catch((error: unknown) =>
        errors.push(error),
      )
    })
  } else {
    server = await webServer((request) => {
      const { n, moment } = parse(request.url)
      return new EventSourceResponse(content(moment), { request, ...optionsFor(n, moment) })
    })
  }
  // Many short-lived sockets: do not let keep-alive hold them.
  server.server.keepAliveTimeout = 100
  return { server, registry, limiter, closes, errors, late }
}

/** The moments whose client waits for the response head before it leaves. */
const WAITS_FOR_HEAD: ReadonlySet<Moment> = new Set([
  'after-head',
  'mid-event',
  'during-ping',
  'done',
  'error',
])

/**
 * One client, leaving at `moment`. Resolves once the client side is done, with whether the
 * client saw a response head (a 200, or a 503 from the per-moment limit).
 */
async function cycle(
  server: TestServer,
  n: number,
  moment: Moment,
  rand: () => number,
): Promise<boolean> {
  const path = `/?n=${n}&m=${moment}`
  switch (moment) {
    case 'before-head': {
      // The request goes out and the socket is destroyed before (or as) the head comes back.
      await new Promise<void>((resolve) => {
        const socket = connect({ port: server.port, host: '127.0.0.1' }, () => {
          socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
          setTimeout(
            () => {
              socket.destroy()
              resolve()
            },
            Math.floor(rand() * 3),
          )
        })
        // The server may reset the connection it was reading: that is this moment's point.
        socket.on('error', () => resolve())
      })
      return false
    }
    case 'slow-open': {
      // The content function is still awaiting when the client leaves.
      const socket = connect({ port: server.port, host: '127.0.0.1' })
      // As above: an error on a socket this client is abandoning is the scenario, not a fault.
      socket.on('error', () => {})
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
      await delay(5 + Math.floor(rand() * 15))
      socket.destroy()
      return false
    }
    case 'in-send-timeout':
    case 'send-timeout': {
      const socket = await stuckClient(server.port, path)
      // Leave before the 60 ms send timeout fires, or well after it.
      await delay(moment === 'in-send-timeout' ? 20 + Math.floor(rand() * 30) : 150)
      socket.destroy()
      return false
    }
    default: {
      // Nothing is abandoned before the head here: a failure to get one is a fault, and fails
      // the run with its cause.
      const stream = await openStream(`${server.url}${path}`)
      if (moment === 'after-head') {
        stream.destroy()
        return true
      }
      if (moment === 'done' || moment === 'error') {
        await stream.ended
        return true
      }
      const wanted = moment === 'during-ping' ? ': ping' : 'data: x'
      await new Promise<void>((resolve) => {
        const check = () => {
          if (stream.text().includes(wanted)) {
            stream.res.off('data', check)
            resolve()
          }
        }
        stream.res.on('data', check)
        check()
        void stream.ended.then(() => resolve())
      })
      stream.destroy()
      return true
    }
  }
}

/** What {@link runCycles} saw from the client side. */
export interface CycleRun {
  /** How many cycles of each moment ran. */
  tally: Record<Moment, number>
  /** The request numbers whose client saw a response head: each must have reached the server. */
  heads: number[]
  /** How many cycles had a moment that waits for the head: `heads` must be that many. */
  waitedForHead: number
}

/**
 * Runs `count` cycles, `concurrency` at a time, with moments drawn from `seed`.
 */
export async function runCycles(
  server: TestServer,
  count: number,
  options: { seed: number; concurrency: number; firstId?: number },
): Promise<CycleRun> {
  const rand = random(options.seed)
  const tally = Object.fromEntries(MOMENTS.map((m) => [m, 0])) as Record<Moment, number>
  const heads: number[] = []
  let waitedForHead = 0
  let next = 0
  const first = options.firstId ?? 0
  const worker = async () => {
    while (next < count) {
      const n = first + next++
      const moment = MOMENTS[Math.floor(rand() * MOMENTS.length)]!
      tally[moment]++
      if (WAITS_FOR_HEAD.has(moment)) waitedForHead++
      if (await cycle(server, n, moment, rand)) heads.push(n)
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, worker))
  return { tally, heads, waitedForHead }
}
