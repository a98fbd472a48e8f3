/**
 * What every contestant server shares: the IPC commands the orchestrator uses (port, CPU time,
 * memory after GC, subscriber count, broadcast trigger) and the parsing of the routes.
 *
 * Routes served by every contestant, the same everywhere:
 * - `GET /stream?n=&size=` — `n` events whose data is `payloads(size)(i)`, then the end;
 * - `GET /idle` — an event stream that stays open and sends nothing (the library's defaults,
 *   keep-alive timers included);
 * - `GET /sub?topic=` — joins the broadcast on `topic` (default {@link DEFAULT_TOPIC}); the
 *   orchestrator triggers rounds over IPC. Left unpublished, it is an idle subscriber.
 */

import { writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { Session } from 'node:inspector/promises'
import type { AddressInfo } from 'node:net'
import { answer } from './ipc.ts'
import { broadcastPayload } from './payload.ts'

/** One contestant: a server, and how it broadcasts. */
export interface ContestantImpl {
  /** Starts the server on 127.0.0.1 and a free port. */
  listen(): Promise<Server>
  /** Sends one event with `data` to every `/sub` client of `topic`; may return a promise. */
  publish(data: string, topic: string): unknown
  /** How many `/sub` clients, on every topic, are ready to receive a broadcast. */
  subscribers(): number
}

/** CPU time of this process, µs. */
export interface CpuTime {
  user: number
  system: number
}

/** Memory of this process after garbage collection, bytes. */
export interface MemoryFigures {
  heapUsed: number
  rss: number
  external: number
}

const gc = (globalThis as { gc?: () => void }).gc

async function collect(): Promise<MemoryFigures> {
  if (!gc) throw new Error('bench: contestant servers must run with --expose-gc')
  // Several rounds with a macrotask between them: finalizers and weak callbacks run.
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  const { heapUsed, rss, external } = process.memoryUsage()
  return { heapUsed, rss, external }
}

/** The V8 sampling profiler of this process, for `--profile` (bench/run.ts). */
const profiler = { session: undefined as Session | undefined }

async function profileStart(): Promise<void> {
  if (!profiler.session) {
    profiler.session = new Session()
    profiler.session.connect()
    await profiler.session.post('Profiler.enable')
    // 100 µs between samples: enough samples in a run of a second or two.
    await profiler.session.post('Profiler.setSamplingInterval', { interval: 100 })
  }
  await profiler.session.post('Profiler.start')
}

async function profileStop({ file }: { file: string }): Promise<void> {
  if (!profiler.session) throw new Error('bench: profile-stop without profile-start')
  const { profile } = await profiler.session.post('Profiler.stop')
  writeFileSync(file, JSON.stringify(profile))
}

/** Starts a contestant and answers the orchestrator until it goes away. */
export function runContestant(impl: ContestantImpl): void {
  let server: Server | undefined
  answer({
    'profile-start': profileStart,
    'profile-stop': profileStop,
    start: async () => {
      server ??= await impl.listen()
      return (server.address() as AddressInfo).port
    },
    cpu: (): CpuTime => process.cpuUsage(),
    memory: collect,
    subscribers: () => impl.subscribers(),
    // Each event goes to topics t0 … t(topics − 1) in turn, one payload (one publish time) for
    // all: a subscriber of a later topic waits for the publishes before it, as in an app.
    broadcast: async ({
      count,
      size,
      topics = 1,
    }: {
      count: number
      size: number
      topics?: number
    }) => {
      for (let i = 0; i < count; i++) {
        const data = broadcastPayload(i, size)
        const pending: Promise<unknown>[] = []
        for (let t = 0; t < topics; t++) {
          const result = impl.publish(data, topicName(t))
          if (result instanceof Promise) pending.push(result)
        }
        if (pending.length > 0) await Promise.all(pending)
      }
    },
  })
}

/** The route of a request URL. */
export type Route =
  | { kind: 'stream'; n: number; size: number }
  | { kind: 'idle' }
  | { kind: 'sub'; topic: string }
  | { kind: 'none' }

/** The topic of `/sub` without a `topic` parameter. */
export const DEFAULT_TOPIC = topicName(0)

/** The name of broadcast topic number `t`. */
export function topicName(t: number): string {
  return `t${t}`
}

/** Parses a request URL into a {@link Route}. */
export function route(url: string | undefined): Route {
  if (!url) return { kind: 'none' }
  if (url.startsWith('/stream')) {
    const query = new URLSearchParams(url.slice(url.indexOf('?') + 1))
    return { kind: 'stream', n: Number(query.get('n')), size: Number(query.get('size')) }
  }
  if (url === '/idle') return { kind: 'idle' }
  if (url === '/sub') return { kind: 'sub', topic: DEFAULT_TOPIC }
  if (url.startsWith('/sub?')) {
    const topic = new URLSearchParams(url.slice(5)).get('topic')
    return { kind: 'sub', topic: topic || DEFAULT_TOPIC }
  }
  return { kind: 'none' }
}

/** The head every hand-written contestant sends (Oven's own head, for equal bytes). */
export const SSE_HEAD = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-store, no-transform',
  'X-Accel-Buffering': 'no',
  Connection: 'keep-alive',
}

/** Starts `server` on 127.0.0.1, a free port and a backlog that takes 10 000 connects. */
export function listening(server: Server): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => resolve(server))
  })
}

/** Keeps a set of open responses: added now, removed when the connection closes. */
export function track<T>(
  set: Set<T>,
  item: T,
  emitter: { once(e: 'close', f: () => void): unknown },
) {
  set.add(item)
  emitter.once('close', () => set.delete(item))
}

/** Broadcast subscribers by topic, for the contestants that keep their own sets. */
export class Topics<T> {
  readonly #sets = new Map<string, Set<T>>()
  #size = 0

  /** Adds `item` to `topic`. */
  add(topic: string, item: T): void {
    let set = this.#sets.get(topic)
    if (!set) this.#sets.set(topic, (set = new Set()))
    set.add(item)
    this.#size++
  }

  /** Removes `item` from `topic`. */
  delete(topic: string, item: T): void {
    if (this.#sets.get(topic)?.delete(item)) this.#size--
  }

  /** The subscribers of `topic`. */
  of(topic: string): Iterable<T> {
    return this.#sets.get(topic) ?? []
  }

  /** How many subscribers, on every topic. */
  get size(): number {
    return this.#size
  }
}
