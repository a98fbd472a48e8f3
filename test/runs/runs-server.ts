/**
 * A test server around a `Runs`: `GET /runs/<id>` attaches (with the request's Last-Event-ID),
 * `POST /runs/<id>/stop` stops, `GET /runs/<id>/status` answers the state or 404. Errors the
 * streams report are kept, so a test can assert there were none.
 */

import { createChannel, type Runs } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { iterateEvents, readEvents, type SseEvent } from '../../src/testing.ts'
import { nodeServer, type TestServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'

export interface RunsServer extends TestServer {
  /** The URL a client attaches to. */
  attachUrl(id: string): string
  /** Stops run `id` through this server: `{ status, body }`. */
  stop(id: string): Promise<{ status: number; body: string }>
  /** The errors its streams reported. */
  readonly errors: unknown[]
}

export async function runsServer(runs: Runs): Promise<RunsServer> {
  const errors: unknown[] = []
  const server = await nodeServer((req, res) => {
    const [, , id = '', action] = new URL(req.url ?? '/', 'http://localhost').pathname.split('/')
    const runId = decodeURIComponent(id)
    if (action === 'stop') {
      runs.stop(runId).then(
        (stopped) => res.writeHead(200).end(JSON.stringify({ stopped })),
        (error: { code?: string }) =>
          res.writeHead(error.code === 'ERR_SSE_RUN_NOT_FOUND' ? 404 : 500).end(error.code),
      )
      return
    }
    if (action === 'status') {
      void runs.status(runId).then((state) => res.writeHead(state ? 200 : 404).end(state ?? ''))
      return
    }
    void sendEventStream(req, res, (ctx) => runs.attach(runId, ctx), {
      onError: (error) => errors.push(error),
    })
  })
  return Object.assign(server, {
    errors,
    attachUrl: (id: string) => `${server.url}/runs/${encodeURIComponent(id)}`,
    async stop(id: string) {
      const response = await fetch(`${server.url}/runs/${encodeURIComponent(id)}/stop`, {
        method: 'POST',
        signal: AbortSignal.timeout(10_000),
      })
      return { status: response.status, body: await response.text() }
    },
  })
}

/** A seeded pseudo-random generator (mulberry32): the same seed, the same test. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Kills the client of one run 20 times at seeded random points (each reconnection to a random
 * server of `servers`, with the Last-Event-ID of the last event it received) while the test
 * produces events, some while no client is connected; then reads the rest to the end. Returns
 * what the run produced and the concatenation of what every connection received.
 */
export async function chopAndResume(
  runs: Runs,
  servers: readonly RunsServer[],
  seed: number,
): Promise<{ produced: string[]; received: string[]; end: SseEvent | undefined }> {
  const random = seeded(seed)
  const channel = createChannel<string>(1000)
  const id = `chop-${seed}`
  await runs.start(id, channel)
  const produced: string[] = []
  const produce = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const token = `t${produced.length}`
      produced.push(token)
      await channel.send(token)
    }
  }
  const received: string[] = []
  let lastEventId: string | undefined
  const pick = () => servers[Math.floor(random() * servers.length)]!
  for (let round = 0; round < 20; round++) {
    const controller = new AbortController()
    const got: SseEvent[] = []
    const options = { lastEventId, signal: controller.signal, timeout: 20_000 }
    const reading = (async () => {
      try {
        for await (const event of iterateEvents(pick().attachUrl(id), options)) got.push(event)
      } catch (error) {
        if (!controller.signal.aborted) throw error
      }
    })()
    await produce(Math.floor(random() * 12))
    const target = Math.floor(random() * (produced.length - received.length + 1))
    await waitFor(`round ${round}: ${target} events received`, () => got.length, {
      until: (count) => count >= target,
    })
    controller.abort()
    await reading
    for (const event of got) {
      received.push(event.data)
      lastEventId = event.id
    }
    await produce(Math.floor(random() * 5))
  }
  channel.close()
  const rest = await readEvents(pick().attachUrl(id), {
    ...(lastEventId === undefined ? {} : { lastEventId }),
    timeout: 20_000,
  })
  const end = rest.at(-1)
  received.push(...rest.slice(0, -1).map((event) => event.data))
  return { produced, received, end }
}
