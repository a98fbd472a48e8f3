/**
 * Cloudflare Workers under real workerd (the `workerd` dev dependency; no network, no wrangler,
 * no account): the scenario routes are bundled into a Worker with esbuild, served by
 * `workerd serve` in a child process on 127.0.0.1, and talked to from Node with the same
 * scenarios as every framework — plus what is particular to a Worker: how a disconnect reaches
 * the source, the hang detector, the error response, and what SIGTERM does to open streams.
 *
 * One workerd, five sockets, each with its own copy of a Worker: `http` runs the fixture Worker
 * with compatibility date 2026-11-23, where `request.signal` is on (workerd 2026-11-23 makes
 * `enable_request_signal` the default from 2026-11-17, and warns when it is set with a later
 * date); `nosignal` runs it with `disable_request_signal`, as a Worker with an older date and no
 * flag runs; `hono` serves the same routes as a Hono app with `oven-sse/hono`; `docs0` and
 * `docs1` run the two Workers of docs/workers.md, taken from the page.
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { readEvents } from '../../src/testing.ts'
import { waitFor } from '../helpers/wait.ts'
import { http1Client } from './fixtures/clients.ts'
import { findBinary, routesTarget } from './fixtures/runtime.ts'
import { FAIL_MESSAGE } from './fixtures/scenario.ts'
import { sseScenarios, type Target } from './fixtures/suite.ts'
import { PING, TICK } from './fixtures/workerd-intervals.ts'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const binary = findBinary('workerd')
const COMPATIBILITY_DATE = '2026-11-23'
/** How long workerd may take to report its sockets: it took 0.2–1.0 s (`startMs`), on two busy cores. */
const START_DEADLINE = 30_000

/** A workerd process serving the Workers of {@link capnp}. */
interface Workerd {
  /** Origin of each socket, by name. */
  origins: Record<SocketName, string>
  child: ChildProcess
  /** Everything workerd wrote to stderr (its warnings and the Worker's uncaught errors). */
  stderr(): string
  /** Ends workerd: SIGTERM, then SIGKILL after `grace` ms; resolves once it is reaped. */
  stop(grace?: number): Promise<void>
}

/** The sockets of the config, each with its service. */
const SOCKETS = ['http', 'nosignal', 'hono', 'docs0', 'docs1'] as const
type SocketName = (typeof SOCKETS)[number]

function capnp(): string {
  const worker = (module: string, flags: string[] = []) =>
    `(modules = [(name = "${module}", esModule = embed "${module}")], ` +
    `compatibilityDate = "${COMPATIBILITY_DATE}", ` +
    `compatibilityFlags = [${flags.map((flag) => `"${flag}"`).join(', ')}])`
  const services: Record<SocketName, string> = {
    http: worker('worker.js'),
    nosignal: worker('worker.js', ['disable_request_signal']),
    hono: worker('hono.js'),
    docs0: worker('docs0.js'),
    docs1: worker('docs1.js'),
  }
  // Port 0: the kernel picks a free port and workerd reports it on the control fd.
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
${SOCKETS.map((name) => `    (name = "${name}", worker = ${services[name]}),`).join('\n')}
  ],
  sockets = [
${SOCKETS.map((name) => `    (name = "${name}", address = "127.0.0.1:0", http = (), service = "${name}"),`).join('\n')}
  ],
);
`
}

/**
 * The Workers of docs/workers.md, as modules: its TypeScript blocks that `export default` a
 * handler. The second uses the first one's `ticks` (its hidden prelude declares it), so the
 * first block's code before its handler is appended to it.
 */
async function docsWorkers(): Promise<string[]> {
  const page = await readFile(join(root, 'docs/workers.md'), 'utf8')
  const blocks = [...page.matchAll(/```ts\n([\s\S]*?)```/g)]
    .map((match) => match[1] as string)
    .filter((code) => code.includes('export default {'))
  expect(blocks).toHaveLength(2)
  const [smallest, guarded] = blocks as [string, string]
  return [smallest, `${guarded}\n${smallest.slice(0, smallest.indexOf('export default {'))}`]
}

/** Bundles the fixture Workers and those of docs/workers.md; writes the config into `dir`. */
async function prepare(dir: string): Promise<void> {
  const bundle = (entry: string, out: string) =>
    build({
      entryPoints: [entry],
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      conditions: ['workerd', 'worker', 'browser'],
      target: 'es2022',
      // The docs import the package by name; here it is the source.
      alias: { 'oven-sse': join(root, 'src/index.ts') },
      outfile: join(dir, out),
      logLevel: 'silent',
    })
  await bundle(join(root, 'test/integrations/fixtures/workerd-worker.ts'), 'worker.js')
  await bundle(join(root, 'test/integrations/fixtures/workerd-hono-worker.ts'), 'hono.js')
  const docs = await docsWorkers()
  for (const [index, code] of docs.entries()) {
    await writeFile(join(dir, `docs${index}.ts`), code)
    await bundle(join(dir, `docs${index}.ts`), `docs${index}.js`)
  }
  await writeFile(join(dir, 'config.capnp'), capnp())
}

function reap(child: ChildProcess, grace: number): Promise<void> {
  return new Promise<void>((done) => {
    // No pid: it never started (the 'error' event), and no 'exit' will come.
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
      return done()
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), grace)
    child.once('exit', () => {
      clearTimeout(timer)
      done()
    })
    child.kill('SIGTERM')
  })
}

/** Starts `workerd serve` on the config in `dir`; waits until every socket listens. */
async function startWorkerd(dir: string): Promise<Workerd> {
  // fd 3 is the control pipe: workerd writes one JSON line per socket it listens on.
  const started = performance.now()
  const child = spawn(binary, ['serve', 'config.capnp', 'config', '--control-fd=3'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8')
  })
  try {
    const ports = await new Promise<Record<string, number>>((done, fail) => {
      const ports: Record<string, number> = {}
      let control = ''
      const timer = setTimeout(
        () =>
          fail(
            new Error(
              `workerd did not report listening on sockets ${SOCKETS.join(', ')} (its ` +
                `--control-fd messages) within ${START_DEADLINE} ms. stderr: ${stderr}`,
            ),
          ),
        START_DEADLINE,
      )
      ;(child.stdio[3] as Readable).on('data', (chunk: Buffer) => {
        control += chunk.toString('utf8')
        let newline = control.indexOf('\n')
        while (newline >= 0) {
          const message = JSON.parse(control.slice(0, newline)) as {
            event: string
            socket?: string
            port?: number
          }
          control = control.slice(newline + 1)
          newline = control.indexOf('\n')
          if (message.event === 'listen' && message.socket && message.port) {
            ports[message.socket] = message.port
          }
        }
        if (SOCKETS.every((name) => ports[name])) {
          clearTimeout(timer)
          // The slowest start of the file.
          measured.startMs = Math.max(Number(measured.startMs ?? 0), since(started))
          done(ports)
        }
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        fail(new Error(`workerd exited (${code ?? signal}) before listening. stderr: ${stderr}`))
      })
      child.once('error', (error) => {
        clearTimeout(timer)
        fail(new Error(`workerd could not be started: ${error.message}`, { cause: error }))
      })
    })
    return {
      origins: Object.fromEntries(
        SOCKETS.map((name) => [name, `http://127.0.0.1:${ports[name]}`]),
      ) as Record<SocketName, string>,
      child,
      stderr: () => stderr,
      stop: (grace = 5000) => reap(child, grace),
    }
  } catch (error) {
    // Reaped even when the start failed: no workerd outlives the test file.
    await reap(child, 0)
    throw error
  }
}

/** Measured latencies, printed once as JSON. */
const measured: Record<string, number | string> = {}

/** Milliseconds since `start`, rounded to 0.1. */
const since = (start: number) => Math.round((performance.now() - start) * 10) / 10

/** Resolves with the text received once `body` has delivered text matching `pattern`. */
function until(body: Readable, pattern: RegExp): Promise<string> {
  return new Promise((done, fail) => {
    let text = ''
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8')
      if (pattern.test(text)) {
        body.off('data', onData)
        done(text)
      }
    }
    body.on('data', onData)
    body.once('error', fail)
    body.once('end', () => fail(new Error(`the body ended before ${pattern}; received ${text}`)))
  })
}

/** How a response body ends: cleanly (`end`) or cut (`error`/`aborted`), and when. */
function ending(body: Readable): Promise<{ how: 'end' | 'cut'; at: number }> {
  return new Promise((done) => {
    body.resume()
    body.once('end', () => done({ how: 'end', at: performance.now() }))
    body.once('error', () => done({ how: 'cut', at: performance.now() }))
    body.once('close', () => done({ how: 'cut', at: performance.now() }))
  })
}

async function json<T>(url: string): Promise<T> {
  return (await (await fetch(url)).json()) as T
}

interface TicksState {
  open: number
  finished: number
  abortedInFinally: number
}

let dir: string | undefined
let workerd: Workerd | undefined
let version = ''

beforeAll(async () => {
  version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim()
  dir = await mkdtemp(join(tmpdir(), 'oven-workerd-'))
  await prepare(dir)
  workerd = await startWorkerd(dir)
  console.info(`[runtime] ${version}, compatibility date ${COMPATIBILITY_DATE}`)
}, 60_000)

afterAll(async () => {
  await workerd?.stop()
  if (Object.keys(measured).length > 0) {
    console.info(JSON.stringify({ workerd: version, ...measured }))
  }
  if (dir) await rm(dir, { recursive: true, force: true })
})

// workerd's answer when the fetch handler rejects: 500, a bare text body, no content type, and
// it closes the connection.
const expectWorkerdError: Target['expectError'] = ({ status, headers, body }) => {
  expect(status).toBe(500)
  expect(headers.get('content-type')).toBeNull()
  expect(body).toBe('Internal Server Error')
  expect(body).not.toContain(FAIL_MESSAGE)
}

// Every shared scenario applies; the one difference is that the routes keep `ping` on (PING),
// where the other servers turn it off. A Worker's request with nothing pending is cancelled as
// hung (tested below), so an idle stream without its ping would be cut after its last event; and
// a Worker learns that its client left only at its next write, so the ping bounds how long
// `idle()` waits after each disconnect. `closeAll` is steered through the `/close-all` route: it
// ends, from that request, streams that other requests opened, and workerd allows it.
describe('workerd with EventSourceResponse (request.signal on)', () => {
  sseScenarios('workerd', () => routesTarget(workerd!.origins.http, expectWorkerdError))
})

describe('workerd with EventSourceResponse (disable_request_signal)', () => {
  sseScenarios('workerd, no request.signal', () =>
    routesTarget(workerd!.origins.nosignal, expectWorkerdError),
  )
})

describe('Hono on workerd with oven-sse/hono', () => {
  sseScenarios('workerd, Hono', () =>
    routesTarget(workerd!.origins.hono, ({ status, headers, body }) => {
      // Hono's default onError: 500, text/plain "Internal Server Error" (it logs the error to
      // workerd's log, where the test does not look).
      expect(status).toBe(500)
      expect(headers.get('content-type')).toMatch(/^text\/plain/)
      expect(body).toBe('Internal Server Error')
    }),
  )
})

describe('a Worker streaming with Oven, measured', () => {
  const client = http1Client()

  test('the first event arrives at once', async () => {
    const base = workerd!.origins.http
    const started = performance.now()
    const response = await client.raw(`${base}/events`, { accept: 'text/event-stream' })
    try {
      await until(response.body, /id: 1\r\n/)
      measured.firstEventMs = since(started)
    } finally {
      response.close()
    }
    // /events sends its two events and then nothing: had anything held them back, they would
    // never have arrived. The figure is printed, not bounded.
  })

  test('two streams at once each get their own pings (each keeps its own request alive)', async () => {
    const base = workerd!.origins.http
    const first = await client.raw(`${base}/events`, { accept: 'text/event-stream' })
    const second = await client.raw(`${base}/events`, { accept: 'text/event-stream' })
    try {
      // With one keep-alive timer for every stream, the second stream had no timer of its own
      // (workerd cancelled it as hung after its last event) and got no ping.
      await Promise.all([until(first.body, /: ping - /), until(second.body, /: ping - /)])
    } finally {
      first.close()
      second.close()
    }
    await waitFor(
      'both sources finished',
      async () => (await json<{ open: number }>(`${base}/state`)).open,
      {
        until: (open) => open === 0,
      },
    )
  })

  for (const socket of ['http', 'nosignal'] as const) {
    test(`a client close aborts ctx.signal and the finally runs within 200 ms on a stream that writes every ${TICK} ms (${socket})`, async () => {
      const base = workerd!.origins[socket]
      const before = await json<TicksState>(`${base}/ticks/state`)
      const response = await client.raw(`${base}/ticks`, { accept: 'text/event-stream' })
      await until(response.body, /data: tick 2\r\n/)
      const closed = performance.now()
      response.close()
      const after = await waitFor(
        'the /ticks source to finish',
        () => json<TicksState>(`${base}/ticks/state`),
        { until: (state) => state.finished === before.finished + 1, interval: 2 },
      )
      const latency = since(closed)
      measured[`abortMs_${socket}`] = latency
      // workerd notices the close at the stream's next write (at most TICK ms later), then the
      // body's cancel (and, with the flag, request.signal) aborts ctx.signal at once.
      expect(after.abortedInFinally).toBe(before.abortedInFinally + 1)
      expect(after.open).toBe(before.open)
      expect(latency).toBeLessThan(200)
    })
  }

  test(`a silent stream learns of the close at its next ping (${PING} ms)`, async () => {
    const base = workerd!.origins.http
    const before = await json<{ finished: number; open: number }>(`${base}/state`)
    const response = await client.raw(`${base}/events`, { accept: 'text/event-stream' })
    await until(response.body, /id: 2\r\n/)
    const closed = performance.now()
    response.close()
    await waitFor(
      'the /events source to finish',
      () => json<{ finished: number }>(`${base}/state`),
      {
        until: (state) => state.finished === before.finished + 1,
        interval: 2,
      },
    )
    const latency = since(closed)
    measured.silentAbortMs = latency
    // The next ping is due PING ms after the events; 2 s of slack for a busy machine.
    expect(latency).toBeLessThan(PING + 2000)
  })

  test('with ping: false an idle stream is cancelled as hung: cut, and its finally never runs', async () => {
    const base = workerd!.origins.http
    const before = await json<{ open: number; finished: number; registered: number }>(
      `${base}/unpinged/state`,
    )
    const response = await client.raw(`${base}/unpinged`, { accept: 'text/event-stream' })
    const received = await until(response.body, /id: 2\r\n/)
    const eventsAt = performance.now()
    const end = await ending(response.body)
    measured.hungCutMs = Math.round((end.at - eventsAt) * 10) / 10
    expect(received).toContain('event: greeting')
    // No final chunk: the response is cut, not ended.
    expect(end.how).toBe('cut')
    const after = await json<{ open: number; finished: number; registered: number }>(
      `${base}/unpinged/state`,
    )
    // Its continuations were dropped: the source never finished, and it never left the
    // registry. This is why Oven's ping must stay on in a Worker.
    expect(after.open).toBe(before.open + 1)
    expect(after.finished).toBe(before.finished)
    expect(after.registered).toBe(before.registered + 1)
    expect(workerd!.stderr()).toContain("your Worker's code had hung")
  })

  test("an error before the stream: try/catch around openEventSourceResponse gives the Worker's own status", async () => {
    const base = workerd!.origins.http
    // Without it, a rejection is workerd's bare 500 (the scenarios check /fail).
    const refused = await fetch(`${base}/guarded`, { headers: { accept: 'text/event-stream' } })
    expect(refused.status).toBe(401)
    expect(refused.headers.get('content-type')).toBe('text/plain; charset=utf-8')
    expect(await refused.text()).toBe('unauthorized')
    const allowed = await fetch(`${base}/guarded?token=ok`, {
      headers: { accept: 'text/event-stream' },
    })
    expect(allowed.status).toBe(200)
    const events = await readEvents(allowed, { count: 2, timeout: 10_000 })
    expect(events.map((event) => event.data)).toEqual(['tick 0', 'tick 1'])
  })
})

describe('workerd on SIGTERM', () => {
  let stopping: Workerd | undefined

  afterAll(() => stopping?.stop(0))

  test('open streams run on, new requests are not served, and workerd exits once they end', async () => {
    stopping = await startWorkerd(dir!)
    const base = stopping.origins.http
    const client = http1Client()
    const response = await client.raw(`${base}/ticks`, { accept: 'text/event-stream' })
    try {
      await until(response.body, /data: tick 2\r\n/)
      const exited = new Promise<number>((done) =>
        stopping!.child.once('exit', () => done(performance.now())),
      )
      stopping.child.kill('SIGTERM')
      // No shutdown reaches the Worker: the stream goes on (1 s of ticks, 20 of them)…
      await until(response.body, /data: tick 22\r\n/)
      expect(stopping.child.exitCode).toBeNull()
      // …while a new request is not answered (workerd no longer accepts).
      await expect(fetch(`${base}/state`, { signal: AbortSignal.timeout(1000) })).rejects.toThrow()
      const closed = performance.now()
      response.close()
      // The next tick finds the client gone, the last request ends, and workerd exits.
      const exitMs = (await exited) - closed
      measured.exitAfterLastStreamMs = Math.round(exitMs * 10) / 10
      expect(exitMs).toBeLessThan(5000)
    } finally {
      response.close()
    }
  })
})

describe('the Workers of docs/workers.md', () => {
  test('the smallest complete Worker streams ticks with the event-stream head', async () => {
    const response = await http1Client().raw(workerd!.origins.docs0, {
      accept: 'text/event-stream',
    })
    try {
      expect(response.status).toBe(200)
      expect(response.headers['content-type']).toBe('text/event-stream; charset=utf-8')
      expect(await until(response.body, /data: tick 1\r\n/)).toContain('id: 0')
    } finally {
      response.close()
    }
  })

  test('the try/catch Worker answers 401 without the token, and streams with it', async () => {
    const base = workerd!.origins.docs1
    const refused = await fetch(base, { headers: { accept: 'text/event-stream' } })
    expect(refused.status).toBe(401)
    expect(await refused.text()).toBe('unauthorized')
    const allowed = await fetch(base, {
      headers: { accept: 'text/event-stream', authorization: 'Bearer demo' },
    })
    expect(allowed.status).toBe(200)
    const events = await readEvents(allowed, { count: 2, timeout: 10_000 })
    expect(events.map((event) => event.data)).toEqual(['tick 0', 'tick 1'])
  })
})
