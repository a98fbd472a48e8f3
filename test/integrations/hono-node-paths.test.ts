/**
 * Which path `oven-sse/hono` takes on `@hono/node-server`, and what each keeps: the fast path
 * (written to the Node response) only where nothing can see or replace the response after the
 * handler; the web `Response` wherever a middleware runs first, with `direct: false`, or
 * without node-server's bindings. The shared scenarios run on both paths in hono.test.ts.
 */

import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { type Context, Hono } from 'hono'
import { cors } from 'hono/cors'
import { secureHeaders } from 'hono/secure-headers'
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest'
import { type HonoSseOptions, sse } from '../../src/hono.ts'
import {
  type CloseReason,
  ConnectionLimiter,
  type Content,
  SseError,
  StreamRegistry,
} from '../../src/index.ts'
import { waitFor, within } from '../helpers/wait.ts'
import { http1Client } from './fixtures/clients.ts'

type Path = 'node' | 'web'

/** The standard `Response`, before node-server replaces the global with its own. */
const StandardResponse = globalThis.Response
const registry = new StreamRegistry()
const limit = new ConnectionLimiter<Request>({ max: 1 })
/** What each stream ended with, by route, in the order they were made. */
const closes: Array<{ route: string; reason: Promise<CloseReason> }> = []
const paths = new Map<string, Path>()
const errors: unknown[] = []
let releaseLate!: () => void
const lateGate = new Promise<void>((resolve) => {
  releaseLate = resolve
})

/** A source that says hello and then stays open until its stream ends. */
const held: Content<Request> = async function* ({ signal }) {
  yield 'hello'
  await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
}

type Sse = typeof sse

/** `sse` (or another copy of it), noting the path taken and keeping `closed`. */
function record(route: string, helper: Sse = sse) {
  return async (c: Context, content: Content<Request>, options: HonoSseOptions = {}) => {
    const response = await helper(c, content, { registry, ping: false, ...options })
    paths.set(route, response.headers.has('x-hono-already-sent') ? 'node' : 'web')
    closes.push({ route, reason: response.closed })
    return response
  }
}

function app(late: Sse) {
  const app = new Hono()
  app.onError((error, c) => {
    errors.push(error)
    return c.text('failed', 500)
  })
  // Registered before the middleware below: first in its chain, the fast path.
  app.get('/first', (c) => record('/first')(c, held))
  app.get('/limited', (c) => record('/limited')(c, held, { limit }))
  app.get('/web', (c) => record('/web')(c, ['a', 'b'], { direct: false }))
  app.get('/bad-direct', (c) =>
    record('/bad-direct')(c, ['a'], { direct: 'yes' } as unknown as HonoSseOptions),
  )
  app.get('/late', (c) =>
    record('/late', late)(c, async function* () {
      yield 'one'
      await lateGate
      yield 'two'
    }),
  )
  // Reads `c.res` before `next()`: Hono would copy a returned response into a new one.
  app.use('/cors', cors({ origin: 'http://example.test' }))
  app.get('/cors', (c) => record('/cors')(c, ['a', 'b']))
  // Sets headers on `c.res` after `next()`: they must reach the client.
  app.use('/secure', secureHeaders())
  app.get('/secure', (c) => record('/secure')(c, ['a', 'b']))
  return app
}

let server: Server
let base: string
let lateSse: Sse
let LateResponse: unknown
let routes: Hono
const client = http1Client()

beforeAll(async () => {
  // node-server replaces the global `Response` as it starts: an Oven loaded after that (a route
  // module imported lazily) extends node-server's `Response`, not the standard one.
  const started = serve({ fetch: (request, env) => routes.fetch(request, env), port: 0 })
  server = started as Server
  vi.resetModules()
  lateSse = (await import('../../src/hono.ts')).sse
  LateResponse = Object.getPrototypeOf(
    (await import('../../src/transports/web.ts')).EventSourceResponse,
  )
  routes = app(lateSse)
  if (!server.listening) await new Promise<void>((resolve) => server.once('listening', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

/** The reason the last stream of `route` ended with. */
function closedOf(route: string): Promise<CloseReason> {
  const found = closes.findLast((entry) => entry.route === route)
  if (!found) throw new Error(`no stream on ${route}`)
  return found.reason
}

async function text(response: Response): Promise<string> {
  return within(response.text(), 5000, 'the end of the stream')
}

describe('oven-sse/hono on @hono/node-server: which path, and what it keeps', () => {
  test('a route first in its chain is written to the Node response; closed gives the reason', async () => {
    const response = await client.raw(`${base}/first`)
    let body = ''
    response.body.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8')
    })
    await waitFor('the first event', () => body, { until: (b) => b.includes('data: hello') })
    expect(response.status).toBe(200)
    expect(response.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(response.headers['x-hono-already-sent']).toBeUndefined()
    expect(paths.get('/first')).toBe('node')
    response.close()
    expect(await within(closedOf('/first'), 5000, 'closed')).toBe('disconnect')
  })

  test('past a connection limit the fast path answers 503 with Retry-After; closed is "rejected"', async () => {
    const first = await client.raw(`${base}/limited`)
    try {
      const second = await fetch(`${base}/limited`)
      expect(second.status).toBe(503)
      expect(second.headers.get('retry-after')).toBe('5')
      await second.text()
      expect(await within(closedOf('/limited'), 5000, 'closed')).toBe('rejected')
      expect(paths.get('/limited')).toBe('node')
    } finally {
      first.close()
    }
  })

  test('direct: false answers with a streaming web Response', async () => {
    const response = await fetch(`${base}/web`)
    expect(await text(response)).toBe(': ok\r\n\r\ndata: a\r\n\r\ndata: b\r\n\r\n')
    expect(paths.get('/web')).toBe('web')
    expect(await closedOf('/web')).toBe('done')
  })

  test('a middleware that reads c.res first (cors): the web path, its headers sent once', async () => {
    const response = await fetch(`${base}/cors`, { headers: { origin: 'http://example.test' } })
    expect(response.headers.get('access-control-allow-origin')).toBe('http://example.test')
    expect(await text(response)).toBe(': ok\r\n\r\ndata: a\r\n\r\ndata: b\r\n\r\n')
    expect(paths.get('/cors')).toBe('web')
  })

  test('a middleware that sets headers after next() (secureHeaders): the web path, headers sent', async () => {
    const response = await fetch(`${base}/secure`)
    expect(response.headers.get('x-content-type-options')).toBe('nosniff')
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(await text(response)).toBe(': ok\r\n\r\ndata: a\r\n\r\ndata: b\r\n\r\n')
    expect(paths.get('/secure')).toBe('web')
  })

  test('app.fetch called directly (no node-server bindings): a streaming web Response', async () => {
    const response = await routes.request('/cors', { headers: { origin: 'http://example.test' } })
    expect(response.body).not.toBeNull()
    expect(await text(response)).toBe(': ok\r\n\r\ndata: a\r\n\r\ndata: b\r\n\r\n')
    const first = await routes.request('/first')
    expect(paths.get('/first')).toBe('web')
    await first.body?.cancel()
    expect(await within(closedOf('/first'), 5000, 'closed')).toBe('disconnect')
  })

  test('direct must be a boolean: the promise rejects and onError answers', async () => {
    errors.length = 0
    const response = await fetch(`${base}/bad-direct`)
    expect(response.status).toBe(500)
    expect(await response.text()).toBe('failed')
    expect(errors).toHaveLength(1)
    const error = errors[0] as SseError
    expect(error).toBeInstanceOf(SseError)
    expect(error.code).toBe('ERR_SSE_INVALID_OPTION')
    expect(error.message).toBe(
      'Invalid option "direct": expected a boolean, received string "yes".',
    )
  })

  test('an Oven loaded after node-server replaced Response: one head, the stream intact', async () => {
    // The premise: this copy of Oven extends node-server's `Response`, not the standard one.
    expect(LateResponse).not.toBe(StandardResponse)
    expect(LateResponse).toBe(globalThis.Response)
    const logged = vi.spyOn(console, 'error')
    try {
      const response = await client.raw(`${base}/late`)
      let body = ''
      let ended = false
      response.body.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8')
      })
      response.body.on('end', () => {
        ended = true
      })
      await waitFor('the first event', () => body, { until: (b) => b.includes('data: one') })
      // node-server has handled the handler's answer by now: a second head would have failed
      // there, and its error ended the response with "Error: ..." in the body.
      releaseLate()
      await waitFor('the end of the stream', () => ended, { until: (e) => e })
      expect(body).toBe(': ok\r\n\r\ndata: one\r\n\r\ndata: two\r\n\r\n')
      expect(paths.get('/late')).toBe('node')
      expect(logged).not.toHaveBeenCalled()
    } finally {
      logged.mockRestore()
    }
  })
})
