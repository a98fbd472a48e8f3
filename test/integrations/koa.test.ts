/**
 * Koa 3 with the `oven-sse/koa` helper.
 */

import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import Koa from 'koa'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { sse } from '../../src/koa.ts'
import { readEvents } from '../../src/testing.ts'
import { waitFor } from '../helpers/wait.ts'
import { http1Client } from './fixtures/clients.ts'
import { createScenario, FAIL_MESSAGE, PRESET_HEADERS } from './fixtures/scenario.ts'
import { sseScenarios, type Target } from './fixtures/suite.ts'

const scenario = createScenario()
let server: Server
let target: Target
const appErrors: Error[] = []

function app() {
  const app = new Koa()
  // Koa's default error report prints to stderr; collect instead.
  app.silent = true
  app.on('error', (error: Error) => appErrors.push(error))
  // An error middleware the way Koa apps write one, for /json-error only.
  app.use(async (ctx, next) => {
    if (ctx.path !== '/json-error') return next()
    try {
      await next()
    } catch (error) {
      ctx.status = 422
      ctx.body = { error: (error as Error).message }
    }
  })
  app.use(async (ctx) => {
    switch (ctx.path) {
      case '/events':
        return sse(ctx, scenario.events, scenario.options)
      case '/once':
        return sse(ctx, scenario.once, scenario.options)
      case '/fail':
      case '/json-error':
        return sse(ctx, scenario.fail, scenario.options)
      case '/flood':
        return sse(ctx, scenario.flood, scenario.options)
      case '/quiet':
        return sse(ctx, scenario.quiet, scenario.quietOptions)
      case '/preset':
        ctx.set(PRESET_HEADERS)
        return sse(ctx, scenario.once, scenario.options)
      case '/headers':
        ctx.set('x-request-kind', 'stream')
        return sse(ctx, ['one'])
      case '/breaks':
        return sse(ctx, async function* () {
          yield 'first'
          throw new Error('broken mid-stream')
        })
      case '/not-awaited':
        // Not awaited: the helper has already told Koa to keep out of the response.
        void sse(ctx, ['one', 'two'])
        return
      default:
        ctx.status = 404
    }
  })
  return app
}

beforeAll(async () => {
  server = app().listen(0, '127.0.0.1')
  await new Promise<void>((resolve) => server.once('listening', resolve))
  target = {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    client: http1Client(),
    state: async () => scenario.state(),
    closeAll: () => scenario.closeAll(),
    expectError: ({ status, headers, body }) => {
      // ctx.onerror: 500 text/plain; the message itself because the error is `expose`d.
      expect(status).toBe(500)
      expect(headers.get('content-type')).toMatch(/^text\/plain/)
      expect(body).toBe(FAIL_MESSAGE)
    },
  }
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

describe('Koa 3', () => {
  sseScenarios('koa', () => target)

  test('an error middleware answers when the content function throws (ctx.respond restored)', async () => {
    const response = await fetch(`${target.base}/json-error`)
    expect(response.status).toBe(422)
    expect(await response.json()).toEqual({ error: FAIL_MESSAGE })
  })

  test('keeps headers set with ctx.set()', async () => {
    const response = await target.client.raw(`${target.base}/headers`)
    response.close()
    expect(response.headers['x-request-kind']).toBe('stream')
    expect(response.headers['content-type']).toBe('text/event-stream; charset=utf-8')
  })

  test('an error while streaming ends the stream and is emitted on the app', async () => {
    appErrors.length = 0
    const events = await readEvents(`${target.base}/breaks`)
    expect(events.map((event) => event.data)).toEqual(['first'])
    await waitFor('the app error event', () => appErrors.length, { until: (n) => n === 1 })
    expect(appErrors[0]?.message).toBe('broken mid-stream')
  })

  test('a helper call that is not awaited still streams (no 404 from Koa)', async () => {
    const events = await readEvents(`${target.base}/not-awaited`)
    expect(events.map((event) => event.data)).toEqual(['one', 'two'])
  })
})
