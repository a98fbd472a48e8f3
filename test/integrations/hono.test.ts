/**
 * Hono on `@hono/node-server` with the `oven-sse/hono` helper.
 */

import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { compress } from 'hono/compress'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { sse } from '../../src/hono.ts'
import { requestAcceptsEventStream } from '../../src/index.ts'
import { readEvents } from '../../src/testing.ts'
import { waitFor } from '../helpers/wait.ts'
import { http1Client } from './fixtures/clients.ts'
import { createScenario, FAIL_MESSAGE, PRESET_HEADERS } from './fixtures/scenario.ts'
import { captureFailLogs, sseScenarios, type Target } from './fixtures/suite.ts'

const scenario = createScenario()
let server: Server
let target: Target
/** Holds /late's first event back until the test opens it. */
const lateGate = (() => {
  let resolve!: () => void
  const promise = new Promise<void>((done) => {
    resolve = done
  })
  return { promise, resolve }
})()

function app() {
  const app = new Hono()
  // Hono's compress middleware must leave event streams alone (they are no-transform).
  app.use(compress())
  app.get('/events', (c) => sse(c, scenario.events, scenario.options))
  app.get('/once', (c) => sse(c, scenario.once, scenario.options))
  app.get('/fail', (c) => sse(c, scenario.fail, scenario.options))
  app.get('/flood', (c) => sse(c, scenario.flood, scenario.options))
  app.get('/quiet', (c) => sse(c, scenario.quiet, scenario.quietOptions))
  // A middleware sets headers first, the Hono way.
  app.use('/preset', async (c, next) => {
    for (const [name, value] of Object.entries(PRESET_HEADERS)) c.header(name, value)
    await next()
  })
  app.get('/preset', (c) => sse(c, scenario.once, scenario.options))
  // One route, two answers: a stream for EventSource, JSON for everyone else.
  app.get('/prices', (c) =>
    requestAcceptsEventStream(c.req.raw) ? sse(c, [{ data: { price: 1 } }]) : c.json({ price: 1 }),
  )
  app.get('/late', (c) =>
    sse(c, async function* () {
      // The first event waits for the test: the head must not wait for it.
      await lateGate.promise
      yield 'late'
    }),
  )
  const custom = new Hono()
  custom.onError((error, c) => c.json({ error: error.message }, 503))
  custom.get('/custom-error', (c) => sse(c, scenario.fail))
  app.route('/', custom)
  return app
}

/**
 * Hono's default onError logs the error with console.error before answering 500. The error the
 * /fail route throws on purpose is recorded here and asserted by `expectError`; anything else
 * still reaches the console.
 */
const failLogs = captureFailLogs()

beforeAll(async () => {
  server = serve({ fetch: app().fetch, port: 0, hostname: '127.0.0.1' }) as Server
  if (!server.listening) await new Promise<void>((resolve) => server.once('listening', resolve))
  target = {
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
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

describe('Hono on @hono/node-server with compress()', () => {
  sseScenarios('hono', () => target)

  test("the app's onError answers when the content function throws", async () => {
    const response = await fetch(`${target.base}/custom-error`)
    expect(response.status).toBe(503)
    expect(await response.json()).toEqual({ error: FAIL_MESSAGE })
  })

  test('the head is sent before a late first event (no buffering of small responses)', async () => {
    // Resolves once the head has arrived, while the source is still waiting for the gate.
    const response = await target.client.raw(`${target.base}/late`, {
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
      lateGate.resolve()
      await waitFor('the late event', () => text, { until: (t) => t.includes('data: late') })
    } finally {
      response.close()
    }
  })

  test('one route serves SSE to EventSource and JSON to everyone else', async () => {
    const json = await fetch(`${target.base}/prices`)
    expect(json.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await json.json()).toEqual({ price: 1 })
    const events = await readEvents(`${target.base}/prices`)
    expect(events.map((event) => event.data)).toEqual(['{"price":1}'])
  })
})
