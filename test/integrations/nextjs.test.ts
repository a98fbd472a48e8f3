/**
 * Next.js 16 serving Oven, run as a user runs it: `next build` then `next start`, and
 * `next dev`, each a child process on 127.0.0.1 and a free port, talked to over real HTTP by
 * real clients. This is also the test of examples/nextjs.
 *
 * The app is examples/nextjs, copied to `.tmp/nextjs-<pid>/` (two levels below the repository,
 * like the example itself, so its tsconfig `paths` to `../../src` hold) with two routes added:
 * `app/[...scenario]/route.ts` serves the shared scenarios (fixtures/next-app-routes.ts) from App
 * Router route handlers, and `pages/api/scenarios/[...path].ts` serves them from a Pages Router
 * API route on `req`/`res` (fixtures/next-pages-routes.ts). One build serves both `next start`
 * and `next dev` (whose output goes to `.next/dev`); the copy is removed afterwards.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { cp, mkdir, rm, writeFile } from 'node:fs/promises'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { createRequire } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createGunzip } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { readEvents } from '../../src/testing.ts'
import { Teardown } from '../helpers/teardown.ts'
import { within } from '../helpers/wait.ts'
import { PREFIX } from './fixtures/next-pages-routes.ts'
import { routesTarget } from './fixtures/runtime.ts'
import { FAIL_MESSAGE } from './fixtures/scenario.ts'
import { sseScenarios, type Target } from './fixtures/suite.ts'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const require = createRequire(import.meta.url)
const nextPackage = require.resolve('next/package.json')
const nextBin = join(dirname(nextPackage), 'dist/bin/next')
const nextVersion = (require(nextPackage) as { version: string }).version
const app = join(root, '.tmp', `nextjs-${process.pid}`)

/** `next build` took 24 s on an idle 2-core machine and 60 s with the cores shared. */
const BUILD_DEADLINE = 150_000
/** `next start` is ready in under 1 s, `next dev` in 1–2 s (measured, idle). */
const START_DEADLINE = 60_000

const teardown = new Teardown()
afterAll(() => teardown.run())

/**
 * The environment of every Next process: no telemetry; `CI` so Next never installs a missing
 * package itself (it fails and names it); no colours; and no `NODE_ENV` from vitest (`test`),
 * which Next warns about and which is not what `next build` or `next dev` set.
 */
function nextEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NEXT_TELEMETRY_DISABLED: '1',
    CI: '1',
    NO_COLOR: '1',
    ...extra,
  }
  delete env.NODE_ENV
  return env
}

/** Copies the example to {@link app} and adds the scenario routes. */
async function assemble(): Promise<void> {
  await rm(app, { recursive: true, force: true })
  const skip = new Set(['.next', 'next-env.d.ts', 'AGENTS.md'])
  await cp(join(root, 'examples/nextjs'), app, {
    recursive: true,
    filter: (source) => !skip.has(source.slice(source.lastIndexOf('/') + 1)),
  })
  teardown.push(() => rm(app, { recursive: true, force: true }))
  const fixture = (from: string, name: string) =>
    relative(join(app, from), join(root, 'test/integrations/fixtures', name))
  await mkdir(join(app, 'app/[...scenario]'), { recursive: true })
  // Route segment config must be written in the route file itself (Next reads it statically).
  await writeFile(
    join(app, 'app/[...scenario]/route.ts'),
    `export const runtime = 'nodejs'\nexport const dynamic = 'force-dynamic'\n` +
      `export { GET, HEAD, POST } from '${fixture('app/[...scenario]', 'next-app-routes.ts')}'\n`,
  )
  await mkdir(join(app, 'pages/api/scenarios'), { recursive: true })
  await writeFile(
    join(app, 'pages/api/scenarios/[...path].ts'),
    `export const config = { api: { responseLimit: false, bodyParser: false } }\n` +
      `export { default } from '${fixture('pages/api/scenarios', 'next-pages-routes.ts')}'\n`,
  )
}

/** Runs `next build`; rejects with its output when it fails. */
function build(): Promise<number> {
  const started = performance.now()
  const child = spawn(process.execPath, [nextBin, 'build', app], {
    cwd: root,
    env: nextEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
  return new Promise((done, fail) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), BUILD_DEADLINE)
    child.once('error', fail)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) done(Math.round(performance.now() - started))
      else fail(new Error(`next build failed (${code ?? signal}):\n${output}`))
    })
  })
}

/** A line a Next process printed, and when it arrived. */
interface Line {
  text: string
  at: number
}

/** A running `next start` or `next dev`. */
interface NextServer {
  base: string
  child: ChildProcess
  lines: Line[]
  /** Resolves with the first line from `from` on that matches `pattern`. */
  line(pattern: RegExp, from?: number, timeout?: number): Promise<Line>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** SIGTERM to its process group, SIGKILL after 5 s; resolves once it has exited. */
  stop(): Promise<void>
}

/** Starts `next <mode>` on the app in its own process group; waits until it is ready. */
async function startNext(mode: 'start' | 'dev'): Promise<NextServer> {
  // `next dev` runs the server in a child process of its own: the group holds both.
  const child = spawn(process.execPath, [nextBin, mode, app, '-p', '0', '-H', '127.0.0.1'], {
    cwd: root,
    env: nextEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  const lines: Line[] = []
  const watchers = new Set<() => void>()
  const onData = () => {
    let rest = ''
    return (chunk: Buffer) => {
      rest += chunk.toString('utf8')
      const parts = rest.split('\n')
      rest = parts.pop() ?? ''
      for (const text of parts) lines.push({ text, at: performance.now() })
      for (const watcher of watchers) watcher()
    }
  }
  child.stdout.on('data', onData())
  child.stderr.on('data', onData())
  let ended = false
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    child.once('exit', (code, signal) => done({ code, signal }))
    child.once('error', () => done({ code: null, signal: null }))
  })
  void exited.then(() => {
    ended = true
    for (const watcher of watchers) watcher()
  })
  const line = (pattern: RegExp, from = 0, timeout = 10_000) =>
    new Promise<Line>((done, fail) => {
      let index = from
      const check = () => {
        for (; index < lines.length; index++) {
          const seen = lines[index] as Line
          if (pattern.test(seen.text)) {
            stop()
            return done(seen)
          }
        }
        if (ended) {
          stop()
          fail(new Error(`next ${mode} exited before printing ${pattern}:\n${dump()}`))
        }
      }
      const timer = setTimeout(() => {
        stop()
        fail(new Error(`next ${mode} did not print ${pattern} in ${timeout} ms:\n${dump()}`))
      }, timeout)
      const stop = () => {
        clearTimeout(timer)
        watchers.delete(check)
      }
      watchers.add(check)
      check()
    })
  const dump = () => lines.map((seen) => seen.text).join('\n')
  const stop = async () => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
    const group = -child.pid
    const timer = setTimeout(() => process.kill(group, 'SIGKILL'), 5000)
    try {
      process.kill(group, 'SIGTERM')
    } catch {
      // The group is gone already.
    }
    await exited
    clearTimeout(timer)
  }
  teardown.push(stop)
  const local = await line(/Local:\s+(http:\/\/127\.0\.0\.1:\d+)/, 0, START_DEADLINE)
  await line(/Ready in/, 0, START_DEADLINE)
  const base = /(http:\/\/127\.0\.0\.1:\d+)/.exec(local.text)?.[1] as string
  return { base, child, lines, line, exited, stop }
}

/** A GET over its own connection, with the headers given; the body is left to the caller. */
function get(url: string, headers: Record<string, string> = {}) {
  return new Promise<{ res: IncomingMessage; close: () => void }>((done, fail) => {
    const req = httpRequest(url, { headers, agent: false }, (res) =>
      done({ res, close: () => req.destroy() }),
    )
    req.once('error', fail)
    req.end()
  })
}

/** Resolves with the text `body` delivered once it includes `needle`. */
function until(body: NodeJS.ReadableStream, needle: string): Promise<string> {
  return new Promise((done, fail) => {
    let text = ''
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8')
      if (text.includes(needle)) {
        body.off('data', onData)
        done(text)
      }
    }
    body.on('data', onData)
    body.once('error', fail)
    body.once('end', () => fail(new Error(`the body ended before ${needle}; received ${text}`)))
  })
}

/** How a response body ends: cleanly (`end`, its last chunk arrived) or cut, and when. */
function ending(body: IncomingMessage): Promise<{ how: 'end' | 'cut'; at: number }> {
  return new Promise((done) => {
    body.resume()
    body.once('end', () => done({ how: 'end', at: performance.now() }))
    body.once('error', () => done({ how: 'cut', at: performance.now() }))
    body.once('close', () => done({ how: 'cut', at: performance.now() }))
  })
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

const round = (values: number[]) => values.map((ms) => Number(ms.toFixed(1)))

/** Route handlers that throw: Next's own 500, an empty body with no content type. */
const expectAppError: Target['expectError'] = ({ status, headers, body }) => {
  expect(status).toBe(500)
  expect(headers.get('content-type')).toBeNull()
  expect(body).toBe('')
}

/**
 * A Pages Router API route that rejects: `next start`'s API resolver answers 500 in plain text.
 * `next dev` rethrows to its dev server, which renders its `_error` page (HTML carrying the
 * status and the error) or, when that render fails (the page still compiling, say), falls back
 * to plain text ending in a newline (next-dev-server.js `run`). Either is Next's own answer.
 */
const expectPagesError =
  (mode: 'start' | 'dev'): Target['expectError'] =>
  ({ status, body }) => {
    expect(status).toBe(500)
    if (mode === 'start' || !body.startsWith('<!DOCTYPE html>')) {
      expect(body).toBe(mode === 'start' ? 'Internal Server Error' : 'Internal Server Error\n')
    } else {
      expect(body).toContain('"page":"/_error"')
      expect(body).toContain('"statusCode":500')
      expect(body).toContain(JSON.stringify(FAIL_MESSAGE))
    }
  }

/** Figures printed once, as JSON, by mode. */
const measured: Record<string, Record<string, unknown>> = {}
afterAll(() => {
  if (Object.keys(measured).length > 0)
    console.info(JSON.stringify({ next: nextVersion, ...measured }))
})

let built: Promise<number> | undefined

/** Assembles and builds the app once, for both modes. */
function buildOnce(): Promise<number> {
  built ??= assemble().then(build)
  return built
}

/** The tests of one mode of serving; `server()` is its running Next. */
function nextTests(mode: 'start' | 'dev', server: () => NextServer): void {
  describe('the shared scenarios on App Router route handlers (EventSourceResponse)', () => {
    sseScenarios(`next ${mode}, App Router`, () => routesTarget(server().base, expectAppError))
  })

  describe('the shared scenarios on a Pages Router API route (sendEventStream)', () => {
    sseScenarios(`next ${mode}, Pages Router`, () =>
      routesTarget(`${server().base}${PREFIX}`, expectPagesError(mode)),
    )
  })

  describe('the example', () => {
    test('each route sends the event-stream head, uncompressed although the client takes gzip', async () => {
      for (const path of ['/api/events', '/api/ticks', '/api/rooms/lobby?token=letmein']) {
        const { res, close } = await get(`${server().base}${path}`, {
          accept: 'text/event-stream',
          'accept-encoding': 'gzip, deflate, br',
        })
        try {
          expect(res.statusCode, path).toBe(200)
          expect(res.headers['content-type'], path).toBe('text/event-stream; charset=utf-8')
          expect(res.headers['cache-control'], path).toBe('no-store, no-transform')
          expect(res.headers['x-accel-buffering'], path).toBe('no')
          expect(res.headers['content-encoding'], path).toBeUndefined()
          expect(res.headers['content-length'], path).toBeUndefined()
          expect(await until(res, 'data: tick 1\r\n'), path).toMatch(/^: ok\r\n\r\n/)
        } finally {
          close()
        }
      }
    })

    test('Last-Event-ID reaches ctx.lastEventId: the ticks go on from it', async () => {
      for (const path of ['/api/events', '/api/ticks']) {
        const events = await readEvents(`${server().base}${path}`, {
          count: 2,
          lastEventId: '41',
          timeout: 10_000,
        })
        expect(
          events.map((event) => [event.id, event.data]),
          path,
        ).toEqual([
          ['42', 'tick 42'],
          ['43', 'tick 43'],
        ])
      }
    })

    test("a refusal in openEventSourceResponse's content function is a 401, not a 200 stream", async () => {
      const refused = await fetch(`${server().base}/api/rooms/lobby`, {
        headers: { accept: 'text/event-stream' },
      })
      expect(refused.status).toBe(401)
      expect(refused.headers.get('content-type')).toBe('text/plain;charset=UTF-8')
      expect(await refused.text()).toBe('a token is required for room lobby')
    })

    test('first event at once, and a client close aborts ctx.signal and runs finally within 200 ms', async () => {
      const figures: Record<string, { firstEventMs: number[]; abortMs: number[] }> = {}
      // Five streams in a row on each router, one at a time; the median is the figure, so one
      // scheduling hiccup of a busy machine does not decide the bound. The ticks are 1 s apart
      // and the client leaves right after the first: only a disconnect noticed as it happens,
      // not at the next write, ends the stream within the bound.
      for (const path of ['/api/events', '/api/ticks']) {
        const firsts: number[] = []
        const aborts: number[] = []
        for (let i = 0; i < 5; i++) {
          const from = server().lines.length
          const sent = performance.now()
          const { res, close } = await get(`${server().base}${path}`)
          await until(res, 'data: tick 1\r\n')
          firsts.push(performance.now() - sent)
          const closed = performance.now()
          close()
          // Printed by the source's finally, once ctx.signal has aborted with `disconnect`.
          const ended = await server().line(/^stream ended after id 1 \(disconnect\)$/, from)
          aborts.push(ended.at - closed)
        }
        figures[path] = { firstEventMs: round(firsts), abortMs: round(aborts) }
        expect(median(aborts), path).toBeLessThan(200)
      }
      measured[mode] = { ...measured[mode], ...figures }
    })

    test('a stream whose Cache-Control leaves out no-transform still gets each event at once', async () => {
      const { res, close } = await get(`${server().base}/gzip`, { 'accept-encoding': 'gzip' })
      try {
        const encoding = res.headers['content-encoding']
        measured[mode] = { ...measured[mode], gzipWithoutNoTransform: encoding ?? 'none' }
        // Next compresses (its `compress` option, on by default, in `next dev` too) and flushes
        // after each chunk. Two events and then silence: had the compressor held them back, they
        // would never arrive.
        expect(encoding).toBe('gzip')
        const body = encoding === 'gzip' ? res.pipe(createGunzip()) : res
        expect(await within(until(body, 'data: second\r\n'), 10_000, 'both events')).toContain(
          'data: first',
        )
      } finally {
        close()
      }
    })
  })
}

describe('next build, then next start', () => {
  let server: NextServer | undefined

  beforeAll(async () => {
    measured.start = { buildMs: await buildOnce() }
    server = await startNext('start')
  }, BUILD_DEADLINE + START_DEADLINE)

  nextTests('start', () => server!)

  test('SIGTERM: the hook in instrumentation.ts ends the streams cleanly; Next waits for the rest', async () => {
    // A server of its own: a connection an earlier test's fetch left open (undici keeps a
    // socket whose body was cancelled for seconds: measured 2.8 s) would hold Next's exit.
    const s = await startNext('start')
    const from = s.lines.length
    // Each on a connection of its own that asks for keep-alive, as browsers do.
    const tabs = await Promise.all(
      ['/api/events', '/api/ticks', '/api/rooms/lobby?token=letmein'].map((path) =>
        get(`${s.base}${path}`, { accept: 'text/event-stream', connection: 'keep-alive' }),
      ),
    )
    await Promise.all(tabs.map(({ res }) => until(res, 'data: tick 1\r\n')))
    const endings = tabs.map(({ res }) => ending(res))
    // A stream of the scenario's own registry, which the hook does not close.
    const quiet = await get(`${s.base}/quiet`, { accept: 'text/event-stream' })
    await until(quiet.res, ': ok')
    const signalled = performance.now()
    // To the server process alone, as a container runtime sends it.
    s.child.kill('SIGTERM')
    const ended = await within(Promise.all(endings), 10_000, 'the example streams to end')
    // 'end': the response's last chunk arrived, a clean end; a cut would be 'cut'.
    expect(ended.map((end) => end.how)).toEqual(['end', 'end', 'end'])
    const endMs = Math.max(...ended.map((end) => end.at)) - signalled
    for (let i = 0; i < 3; i++) await s.line(/^stream ended after id \d+ \(shutdown\)$/, from)
    // Next's own handler has closed the listening socket: a new connection is refused…
    await expect(get(`${s.base}/state`)).rejects.toThrow(/ECONNREFUSED/)
    // …and it waits for the open request, and for the idle keep-alive connections.
    expect(s.child.exitCode).toBeNull()
    const closed = performance.now()
    quiet.close()
    for (const tab of tabs) tab.close()
    const exit = await within(s.exited, 5000, 'next start to exit once the last connection closed')
    measured.start = {
      ...measured.start,
      sigtermStreamsEndedMs: Number(endMs.toFixed(1)),
      exitAfterLastConnectionMs: Number((performance.now() - closed).toFixed(1)),
    }
    // 128 + 15: Next exits as if killed by the signal, once its cleanup is done.
    expect(exit).toEqual({ code: 143, signal: null })
  })
})

describe('next dev', () => {
  let server: NextServer | undefined

  beforeAll(async () => {
    await buildOnce()
    server = await startNext('dev')
    const base = server.base
    // `next dev` compiles each route on its first request (seconds): warm them all up first.
    const started = performance.now()
    for (const path of ['/state', `${PREFIX}/state`, '/api/rooms/lobby']) {
      await (await fetch(`${base}${path}`)).text()
    }
    for (const path of ['/api/events', '/api/ticks']) {
      await readEvents(`${base}${path}`, { count: 1, timeout: 60_000 })
    }
    measured.dev = { warmUpMs: Math.round(performance.now() - started) }
  }, BUILD_DEADLINE + START_DEADLINE)

  afterAll(() => server?.stop())

  nextTests('dev', () => server!)
})
