/**
 * Express 5 with `sendEventStream` as it is, behind the `compression` middleware.
 */

import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createGunzip } from 'node:zlib'
import compression from 'compression'
import express, { type NextFunction, type Request, type Response } from 'express'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { sendEventStream } from '../../src/node.ts'
import { waitFor } from '../helpers/wait.ts'
import { http1Client } from './fixtures/clients.ts'
import { createScenario, FAIL_MESSAGE, PRESET_HEADERS } from './fixtures/scenario.ts'
import { sseScenarios, type Target } from './fixtures/suite.ts'

const scenario = createScenario()
let server: Server
let target: Target

function app() {
  const app = express()
  // compression buffers output until flushed; Oven's stream must get through it at once.
  app.use(compression())
  // Express 5 sends a rejected promise to next(err): return the stream's promise as it is.
  app.get('/events', (req, res) => sendEventStream(req, res, scenario.events, scenario.options))
  app.get('/once', (req, res) => sendEventStream(req, res, scenario.once, scenario.options))
  app.get('/fail', (req, res) => sendEventStream(req, res, scenario.fail, scenario.options))
  app.get('/flood', (req, res) => sendEventStream(req, res, scenario.flood, scenario.options))
  app.get('/quiet', (req, res) => sendEventStream(req, res, scenario.quiet, scenario.quietOptions))
  // A middleware sets headers first, the Express way.
  app.get(
    '/preset',
    (_req, res, next) => {
      res.set(PRESET_HEADERS)
      next()
    },
    (req, res) => sendEventStream(req, res, scenario.once, scenario.options),
  )
  // The classic style: errors passed to next() by hand.
  app.get('/fail-next', (req, res, next) => {
    sendEventStream(req, res, scenario.fail, scenario.options).catch(next)
  })
  // A Cache-Control without no-transform: compression now gzips the stream, and Oven flushes
  // it after every write so each event still leaves at once.
  app.get('/gzip', (req, res) =>
    sendEventStream(req, res, scenario.events, {
      ...scenario.options,
      headers: { 'Cache-Control': 'no-cache' },
    }),
  )
  app.get('/custom-error', (req, res) => sendEventStream(req, res, scenario.fail))
  app.use('/custom-error', (error: Error, _req: Request, res: Response, _next: NextFunction) => {
    res.status(503).json({ error: error.message })
  })
  return app
}

beforeAll(async () => {
  server = app().listen(0, '127.0.0.1')
  await new Promise<void>((resolve) => server.once('listening', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  target = {
    base,
    client: http1Client(),
    state: async () => scenario.state(),
    closeAll: () => scenario.closeAll(),
    expectError: ({ status, headers, body }) => {
      // Express's final handler: 500 and an HTML page (with the stack outside production).
      expect(status).toBe(500)
      expect(headers.get('content-type')).toMatch(/^text\/html/)
      expect(body).toContain(FAIL_MESSAGE)
    },
  }
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

describe('Express 5 behind compression', () => {
  sseScenarios('express', () => target)

  test('errors passed to next(err) by hand reach the error handler before the head', async () => {
    const response = await fetch(`${target.base}/fail-next`)
    expect(response.status).toBe(500)
    expect(await response.text()).toContain(FAIL_MESSAGE)
  })

  test("an app's error middleware answers when the content function throws", async () => {
    const response = await fetch(`${target.base}/custom-error`)
    expect(response.status).toBe(503)
    expect(await response.json()).toEqual({ error: FAIL_MESSAGE })
  })

  test('a gzip-compressed stream still delivers each event at once (flushed per write)', async () => {
    const response = await target.client.raw(`${target.base}/gzip`, {
      'accept-encoding': 'gzip',
    })
    try {
      expect(response.headers['content-encoding']).toBe('gzip')
      const gunzip = response.body.pipe(createGunzip())
      let text = ''
      gunzip.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8')
      })
      // /gzip sends two events and then nothing: without a flush they would sit in the
      // compressor forever.
      await waitFor('both events decompressed', () => text, { until: (t) => t.includes('id: 2') })
      expect(text).toContain('event: greeting')
    } finally {
      response.close()
    }
    await waitFor('the source finished', () => scenario.state().open, { until: (n) => n === 0 })
  })
})
