/**
 * Hono on `@hono/node-server` with the `oven-sse/hono` helper, on both of its paths: the web
 * `Response` (an app with a middleware before every route: compress) and the fast path, written
 * to the Node response (an app without one). Each app records which path every stream took.
 */

import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import type { Context } from 'hono'
import { Hono } from 'hono'
import { compress } from 'hono/compress'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type HonoSseOptions, sse } from '../../src/hono.ts'
import type { Content } from '../../src/index.ts'
import { requestAcceptsEventStream } from '../../src/index.ts'
import { readEvents } from '../../src/testing.ts'
import { waitFor } from '../helpers/wait.ts'
import { http1Client } from './fixtures/clients.ts'
import { createScenario, FAIL_MESSAGE, PRESET_HEADERS, type Scenario } from './fixtures/scenario.ts'
import { captureFailLogs, sseScenarios, type Target } from './fixtures/suite.ts'

type Path = 'node' | 'web'

/** A server under test, the paths its streams took, and the gate of its /late route. */
interface Served {
  server: Server
  target: Target
  paths: Path[]
  lateGate: { promise: Promise<void>; resolve: () => void }
}

function gate() {
  let resolve!: () => void
  const promise = new Promise<void>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

/**
 * The app: `fast` leaves every route first in its chain (the fast path); otherwise compress()
 * runs before every route (the web path). Hono's compress middleware must leave event streams
 * alone either way (they are no-transform).
 */
function app(scenario: Scenario, paths: Path[], lateGate: Promise<void>, fast: boolean) {
  const app = new Hono()
  if (!fast) app.use(compress())
  /** `sse`, noting the path taken: the fast path answers with node-server's marker. */
  const stream = async (c: Context, content: Content<Request>, options?: HonoSseOptions) => {
    const response = await sse(c, content, options)
    paths.push(response.headers.has('x-hono-already-sent') ? 'node' : 'web')
    return response
  }
  app.get('/events', (c) => stream(c, scenario.events, scenario.options))
  app.get('/once', (c) => stream(c, scenario.once, scenario.options))
  app.get('/fail', (c) => stream(c, scenario.fail, scenario.options))
  app.get('/flood', (c) => stream(c, scenario.flood, scenario.options))
  app.get('/quiet', (c) => stream(c, scenario.quiet, scenario.quietOptions))
  const preset = (c: Context) => {
    for (const [name, value] of Object.entries(PRESET_HEADERS)) c.header(name, value)
  }
  if (fast) {
    // The handler sets the headers itself: a middleware before it would take the web path.
    app.get('/preset', (c) => {
      preset(c)
      return stream(c, scenario.once, scenario.options)
    })
  } else {
    // A middleware sets headers first, the Hono way.
    app.use('/preset', async (c, next) => {
      preset(c)
      await next()
    })
    app.get('/preset', (c) => stream(c, scenario.once, scenario.options))
  }
  // One route, two answers: a stream for EventSource, JSON for everyone else.
  app.get('/prices', (c) =>
    requestAcceptsEventStream(c.req.raw)
      ? stream(c, [{ data: { price: 1 } }])
      : c.json({ price: 1 }),
  )
  app.get('/late', (c) =>
    stream(c, async function* () {
      // The first event waits for the test: the head must not wait for it.
      await lateGate
      yield 'late'
    }),
  )
  const custom = new Hono()
  custom.onError((error, c) => c.json({ error: error.message }, 503))
  custom.get('/custom-error', (c) => stream(c, scenario.fail))
  app.route('/', custom)
  return app
}

/**
 * Hono's default onError logs the error with console.error before answering 500. The error the
 * /fail route throws on purpose is recorded here and asserted by `expectError`; anything else
 * still reaches the console.
 */
const failLogs = captureFailLogs()

async function start(fast: boolean): Promise<Served> {
  const scenario = createScenario()
  const paths: Path[] = []
  const lateGate = gate()
  const fetch = app(scenario, paths, lateGate.promise, fast).fetch
  const server = serve({ fetch, port: 0, hostname: '127.0.0.1' }) as Server
  if (!server.listening) await new Promise<void>((resolve) => server.once('listening', resolve))
  const target: Target = {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    client: http1Client(),
    state: async () => scenario.state(),
    closeAll: () => scenario.closeAll(),
    expectError: ({ status, headers, body }) => {
      // Hono's default onError: 500, text/plain "Internal Server Error".
      expect(status).toBe(500)
      expect(headers.get('content-type')).toMatch(/^text\/plain/)
      expect(body).toBe('Internal Server Error')
      // ...after reporting the error to the app's log, once.
      expect(failLogs.splice(0).map((error) => error.message)).toEqual([FAIL_MESSAGE])
    },
  }
  return { server, target, paths, lateGate }
}

async function stop(served: Served | undefined): Promise<void> {
  if (!served) return
  served.server.closeAllConnections()
  await new Promise((resolve) => served.server.close(resolve))
}

for (const [fast, title] of [
  [true, 'Hono on @hono/node-server, fast path (written to the Node response)'],
  [false, 'Hono on @hono/node-server with compress(), web path (a streaming Response)'],
] as const) {
  describe(title, () => {
    let served: Served | undefined
    const target = () => served!.target
    beforeAll(async () => {
      served = await start(fast)
    })
    afterAll(() => stop(served))

    sseScenarios('hono', target)

    test("the app's onError answers when the content function throws", async () => {
      const response = await fetch(`${target().base}/custom-error`)
      expect(response.status).toBe(503)
      expect(await response.json()).toEqual({ error: FAIL_MESSAGE })
    })

    test('the head is sent before a late first event (no buffering of small responses)', async () => {
      // Resolves once the head has arrived, while the source is still waiting for the gate.
      const response = await target().client.raw(`${target().base}/late`, {
        'accept-encoding': 'gzip',
      })
      try {
        expect(response.headers['content-encoding']).toBeUndefined()
        expect(response.status).toBe(200)
        expect(response.headers['content-length']).toBeUndefined()
        let text = ''
        response.body.on('data', (chunk: Buffer) => {
          text += chunk.toString('utf8')
        })
        served!.lateGate.resolve()
        await waitFor('the late event', () => text, { until: (t) => t.includes('data: late') })
      } finally {
        response.close()
      }
    })

    test('one route serves SSE to EventSource and JSON to everyone else', async () => {
      const json = await fetch(`${target().base}/prices`)
      expect(json.headers.get('content-type')).toMatch(/^application\/json/)
      expect(await json.json()).toEqual({ price: 1 })
      const events = await readEvents(`${target().base}/prices`)
      expect(events.map((event) => event.data)).toEqual(['{"price":1}'])
    })

    test(`every stream but HEAD's took the ${fast ? 'fast' : 'web'} path`, () => {
      const paths = served!.paths
      // HEAD (in the suite) takes the web path on either app: Hono wraps its response.
      expect(paths.filter((path) => path === 'web').length).toBe(fast ? 1 : paths.length)
      expect(paths.length).toBeGreaterThan(10)
    })
  })
}
