/**
 * h3 v2 with the `oven-sse/h3` helper, on Node: served by h3's own `serve` (srvx), and by
 * `toNodeHandler(app)` on a plain node:http server. Both run the shared scenarios over real
 * sockets, plus what is h3's own: a middleware's `event.res.headers`, an `HTTPError` thrown
 * before the stream, `HEAD`, and the latencies the docs quote.
 */

import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { H3, HTTPError, serve, setCookie, toNodeHandler } from 'h3'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { sse } from '../../src/h3.ts'
import { waitFor } from '../helpers/wait.ts'
import { http1Client } from './fixtures/clients.ts'
import { createScenario, FAIL_MESSAGE, PRESET_HEADERS, type Scenario } from './fixtures/scenario.ts'
import { captureFailLogs, sseScenarios, type Target } from './fixtures/suite.ts'

/** What `/timed` saw of each stream: when its signal aborted, and when its `finally` ran. */
interface Timed {
  abortedAt?: number
  finishedAt?: number
}

/** The scenario routes on an h3 app, plus `/denied`, `/timed` and the preset middleware. */
function h3App(scenario: Scenario, timed: Timed[]) {
  const app = new H3()
  // A middleware sets headers first, the h3 way; it returns nothing, so the route runs next.
  app.use('/preset', (event) => {
    for (const [name, value] of Object.entries(PRESET_HEADERS)) event.res.headers.set(name, value)
  })
  app.get('/events', (event) => sse(event, scenario.events, scenario.options))
  app.get('/once', (event) => sse(event, scenario.once, scenario.options))
  app.get('/fail', (event) => sse(event, scenario.fail, scenario.options))
  app.get('/flood', (event) => sse(event, scenario.flood, scenario.options))
  app.get('/quiet', (event) => sse(event, scenario.quiet, scenario.quietOptions))
  app.get('/preset', (event) => sse(event, scenario.once, scenario.options))
  // Two cookies set the h3 way (a session, say): each must arrive as its own Set-Cookie.
  app.use('/cookies', (event) => {
    setCookie(event, 'session', 'abc', { httpOnly: true })
    setCookie(event, 'theme', 'dark')
  })
  app.get('/cookies', (event) => sse(event, scenario.once, scenario.options))
  // An authorisation check inside the content function, failing the h3 way.
  app.get('/denied', (event) =>
    sse(
      event,
      async () => {
        await Promise.resolve()
        throw new HTTPError({ status: 401, message: 'no token' })
      },
      scenario.options,
    ),
  )
  app.get('/timed', (event) =>
    sse(
      event,
      async function* ({ signal }) {
        const seen: Timed = {}
        timed.push(seen)
        signal.addEventListener('abort', () => {
          seen.abortedAt = performance.now()
        })
        try {
          yield { data: 'first' }
          await new Promise((resolve) => signal.addEventListener('abort', resolve))
        } finally {
          seen.finishedAt = performance.now()
        }
      },
      scenario.options,
    ),
  )
  return app
}

/**
 * h3 logs an unhandled error (anything but an `HTTPError`) with console.error before answering
 * 500. The error /fail throws on purpose is recorded here and asserted by `expectError`;
 * anything else still reaches the console.
 */
const failLogs = captureFailLogs()

/** The target of one server, with h3's default error response as the expected one. */
function targetOf(base: string, scenario: Scenario): Target {
  return {
    base,
    client: http1Client(),
    state: async () => scenario.state(),
    closeAll: () => scenario.closeAll(),
    expectError: ({ status, headers, body }) => {
      // h3's default for an error that is not an HTTPError: 500 and a JSON body that hides it.
      expect(status).toBe(500)
      expect(headers.get('content-type')).toMatch(/^application\/json/)
      expect(JSON.parse(body)).toMatchObject({ status: 500, unhandled: true, message: 'HTTPError' })
      // ...after reporting the error to the app's log, once.
      expect(failLogs.splice(0).map((error) => error.message)).toEqual([FAIL_MESSAGE])
    },
  }
}

/** Opens `/timed` over a raw request; resolves once its first event has arrived. */
function openTimed(base: string) {
  return new Promise<{ sentAt: number; firstAt: number; close: () => void }>((resolve, reject) => {
    const sentAt = performance.now()
    const req = httpRequest(`${base}/timed`, { agent: false }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8')
        if (text.includes('data: first')) {
          res.removeAllListeners('data')
          resolve({ sentAt, firstAt: performance.now(), close: () => req.destroy() })
        }
      })
    })
    req.on('error', reject)
    req.end()
  })
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/** The h3-specific tests, for either way of serving. */
function h3Tests(label: string, target: () => Target, scenario: () => Scenario, timed: Timed[]) {
  test('headers a middleware set on event.res.headers: the user’s win, framing stays Oven’s', async () => {
    // The shared scenario checks the head; this checks the body was not cut to h3's merged
    // Content-Length (3 bytes) and the response is not text/html.
    const response = await fetch(`${target().base}/preset`)
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(response.headers.get('content-length')).toBeNull()
    expect(response.headers.get('cache-control')).toBe(PRESET_HEADERS['Cache-Control'])
    expect(await response.text()).toContain('id: 2')
  })

  test('cookies set with setCookie before the stream arrive, each as its own Set-Cookie', async () => {
    const response = await fetch(`${target().base}/cookies`)
    expect(response.headers.getSetCookie()).toEqual([
      'session=abc; Path=/; HttpOnly',
      'theme=dark; Path=/',
    ])
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(await response.text()).toContain('id: 2')
  })

  test('an HTTPError thrown before the stream gives its own status, not 200', async () => {
    const response = await fetch(`${target().base}/denied`, {
      headers: { accept: 'text/event-stream' },
    })
    expect(response.status).toBe(401)
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await response.json()).toMatchObject({ status: 401, message: 'no token' })
    expect((await target().state()).registered).toBe(0)
  })

  test('HEAD gets the event-stream head, and the opened stream does not stay behind', async () => {
    const before = (await target().state()).started
    const response = await fetch(`${target().base}/events`, { method: 'HEAD' })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(await response.text()).toBe('')
    await waitFor('the HEAD stream left the registry', () => target().state(), {
      until: (state) => state.registered === 0,
    })
    // The source was made but never pulled: it produced nothing.
    expect((await target().state()).started).toBe(before)
  })

  test('first-event latency, and a client close aborts ctx.signal within 200 ms', async () => {
    timed.length = 0
    const firsts: number[] = []
    const aborts: number[] = []
    const finallies: number[] = []
    // Five in a row, one at a time: the median is the figure, so one scheduling hiccup of a
    // busy machine does not decide the bound.
    for (let i = 0; i < 5; i++) {
      const stream = await openTimed(target().base)
      firsts.push(stream.firstAt - stream.sentAt)
      const seen = timed[i]!
      const closedAt = performance.now()
      stream.close()
      await waitFor(`/timed #${i + 1}: its finally after the client closed`, () => seen, {
        until: (s) => s.finishedAt !== undefined,
      })
      aborts.push(seen.abortedAt! - closedAt)
      finallies.push(seen.finishedAt! - closedAt)
    }
    await waitFor('every /timed stream left the registry', () => scenario().registry.size, {
      until: (n) => n === 0,
    })
    const round = (values: number[]) => values.map((ms) => Number(ms.toFixed(1)))
    console.info(
      JSON.stringify({
        h3: label,
        firstEventMs: round(firsts),
        abortMs: round(aborts),
        finallyMs: round(finallies),
      }),
    )
    // Measured 0.4–3 ms (event-driven: srvx aborts event.req.signal on the response's close).
    expect(median(aborts)).toBeLessThan(200)
  })
}

describe('h3 v2 served by h3 `serve` (srvx)', () => {
  const scenario = createScenario()
  const timed: Timed[] = []
  let server: ReturnType<typeof serve>
  let target: Target

  beforeAll(async () => {
    server = serve(h3App(scenario, timed), {
      port: 0,
      hostname: '127.0.0.1',
      // srvx would add SIGINT/SIGTERM handlers to the test process (it skips them only under
      // CI or TEST), and print its URL.
      gracefulShutdown: false,
      silent: true,
    })
    await server.ready()
    const { port } = server.node!.server!.address() as AddressInfo
    target = targetOf(`http://127.0.0.1:${port}`, scenario)
  })

  afterAll(() => server.close(true))

  sseScenarios('h3 serve', () => target)
  h3Tests(
    'serve',
    () => target,
    () => scenario,
    timed,
  )
})

describe('h3 v2 through toNodeHandler on node:http', () => {
  const scenario = createScenario()
  const timed: Timed[] = []
  let server: Server
  let target: Target

  beforeAll(async () => {
    server = createServer(toNodeHandler(h3App(scenario, timed)))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    target = targetOf(`http://127.0.0.1:${port}`, scenario)
  })

  afterAll(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  sseScenarios('h3 toNodeHandler', () => target)
  h3Tests(
    'toNodeHandler',
    () => target,
    () => scenario,
    timed,
  )
})
