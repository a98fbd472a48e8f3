/**
 * Fastify 5 with the `oven-sse/fastify` plugin, `@fastify/compress` registered.
 */

import { Writable } from 'node:stream'
import compress from '@fastify/compress'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { ovenSse } from '../../src/fastify.ts'
import { ConnectionLimiter, StreamRegistry } from '../../src/index.ts'
import { readEvents } from '../../src/testing.ts'
import { waitFor } from '../helpers/wait.ts'
import { http1Client } from './fixtures/clients.ts'
import { createScenario, FAIL_MESSAGE, PRESET_HEADERS } from './fixtures/scenario.ts'
import { sseScenarios, type Target } from './fixtures/suite.ts'

const scenario = createScenario()
let app: FastifyInstance
let target: Target
/** Every log line the app wrote, parsed. */
const logs: Array<Record<string, unknown>> = []

function logStream() {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line))
      done()
    },
  })
}

async function build(): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: 'info', stream: logStream() } })
  await app.register(compress, { global: true, threshold: 0 })
  // Plugin options are every call's defaults: here the scenario's registry, no ping, retry.
  await app.register(ovenSse, scenario.options)
  app.get('/events', (_request, reply) => reply.sse(scenario.events))
  app.get('/once', (_request, reply) => reply.sse(scenario.once))
  app.get('/fail', (_request, reply) => reply.sse(scenario.fail))
  app.get('/flood', (_request, reply) => reply.sse(scenario.flood))
  app.get(
    '/quiet',
    (
      _request,
      reply, // The plugin's defaults (the scenario's options) carry a retry line: none here.
    ) => reply.sse(scenario.quiet, { ...scenario.quietOptions, retry: undefined }),
  )
  app.get('/preset', (_request, reply) => reply.headers(PRESET_HEADERS).sse(scenario.once))
  app.get('/headers', (_request, reply) => {
    reply.header('x-request-kind', 'stream').header('cache-control', 'no-cache')
    return reply.sse(['one'], { headers: { 'x-call': 'yes' } })
  })
  app.get('/request', (_request, reply) =>
    reply.sse(({ request }) => [{ data: `${request.method} ${request.url} ${request.id}` }]),
  )
  app.get('/breaks', (_request, reply) =>
    reply.sse(async function* () {
      yield 'first'
      throw new Error('broken mid-stream')
    }),
  )
  // A limit of one stream per caller, keyed on the FastifyRequest.
  const limit = new ConnectionLimiter<FastifyRequest>({
    maxPerKey: 1,
    key: (request) => String(request.headers['x-user']),
  })
  app.get('/limited', (_request, reply) => reply.sse(scenario.events, { limit }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

beforeAll(async () => {
  app = await build()
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  target = {
    base: `http://127.0.0.1:${port}`,
    client: http1Client(),
    state: async () => scenario.state(),
    closeAll: () => scenario.closeAll(),
    expectError: ({ status, headers, body }) => {
      // Fastify's default error handler: JSON with statusCode, error and message.
      expect(status).toBe(500)
      expect(headers.get('content-type')).toMatch(/^application\/json/)
      expect(JSON.parse(body)).toMatchObject({
        statusCode: 500,
        error: 'Internal Server Error',
        message: FAIL_MESSAGE,
      })
    },
  }
})

afterAll(async () => {
  await app.close()
})

describe('Fastify 5 with @fastify/compress', () => {
  sseScenarios('fastify', () => target)

  test('declares the reply decorator', () => {
    expect(app.hasReplyDecorator('sse')).toBe(true)
  })

  test('keeps headers set with reply.header(); a call option wins over them', async () => {
    const response = await target.client.raw(`${target.base}/headers`, {
      'accept-encoding': 'gzip',
    })
    response.close()
    expect(response.headers['x-request-kind']).toBe('stream')
    expect(response.headers['x-call']).toBe('yes')
    expect(response.headers['cache-control']).toBe('no-cache')
    // Hijacked replies skip onSend hooks: @fastify/compress leaves the stream alone.
    expect(response.headers['content-encoding']).toBeUndefined()
    expect(response.headers['content-type']).toBe('text/event-stream; charset=utf-8')
  })

  test('the content function sees the FastifyRequest as ctx.request', async () => {
    const events = await readEvents(`${target.base}/request`)
    expect(events[0]?.data).toMatch(/^GET \/request req-\w+$/)
  })

  test('logs through reply.log: the request, and an error while streaming', async () => {
    logs.length = 0
    const events = await readEvents(`${target.base}/breaks`)
    expect(events.map((event) => event.data)).toEqual(['first'])
    await waitFor('the request completed log line', () =>
      logs.some((line) => line.msg === 'request completed' && line.reqId !== undefined),
    )
    const failure = logs.find((line) => line.msg === 'oven-sse: event stream failed')
    expect(failure).toMatchObject({ level: 50, err: { message: 'broken mid-stream' } })
    // Logged by reply.log: the line carries the request id.
    expect(failure?.reqId).toEqual(logs.find((line) => line.msg === 'request completed')?.reqId)
  })

  test('every end of a stream is seen: onResponse or onRequestAbort, and a log line', async () => {
    const hooks: string[] = []
    const lines: Array<Record<string, unknown>> = []
    const other = Fastify({
      logger: {
        level: 'info',
        stream: new Writable({
          write(chunk: Buffer, _encoding, done) {
            for (const line of chunk.toString('utf8').split('\n')) {
              if (line) lines.push(JSON.parse(line))
            }
            done()
          },
        }),
      },
    })
    await other.register(ovenSse, { ping: false })
    other.addHook('onResponse', async (request) => {
      hooks.push(`onResponse ${request.url}`)
    })
    other.addHook('onRequestAbort', async (request) => {
      hooks.push(`onRequestAbort ${request.url}`)
    })
    const reasons: string[] = []
    other.get('/quiet', (_request, reply) =>
      reply.sse(scenario.quiet, { onClose: (reason) => reasons.push(reason) }),
    )
    other.get('/done', (_request, reply) => reply.sse(['one']))
    await other.listen({ port: 0, host: '127.0.0.1' })
    try {
      const address = other.server.address()
      const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
      // The server ends it: the response finishes, Fastify runs onResponse and logs.
      await readEvents(`${base}/done`)
      await waitFor('onResponse for /done', () => hooks, {
        until: (seen) => seen.includes('onResponse /done'),
      })
      await waitFor("Fastify's request completed line", () =>
        lines.some((line) => line.msg === 'request completed'),
      )
      // The client goes away — the common case: the response never finishes, so Fastify runs
      // onRequestAbort (not onResponse), and the plugin logs the end as Fastify does for its
      // own streams, with the reason and how long the stream lasted.
      const response = await http1Client().raw(`${base}/quiet`)
      await new Promise((resolve) => response.body.once('data', resolve))
      response.close()
      await waitFor('the stream to end', () => reasons, {
        until: (seen) => seen.includes('disconnect'),
      })
      await waitFor('onRequestAbort for /quiet', () => hooks, {
        until: (seen) => seen.includes('onRequestAbort /quiet'),
      })
      await waitFor('a log line for the stream the client closed', () =>
        lines.some((line) => line.msg === 'stream closed prematurely'),
      )
      const line = lines.find((entry) => entry.msg === 'stream closed prematurely')
      const started = lines.find(
        (entry) =>
          entry.msg === 'incoming request' && (entry.req as { url: string }).url === '/quiet',
      )
      expect(line).toMatchObject({ level: 30, reason: 'disconnect', reqId: started?.reqId })
      expect(line?.responseTime).toBeGreaterThan(0)
      expect(hooks).not.toContain('onResponse /quiet')
    } finally {
      await other.close()
    }
  })

  test('app.close() ends open streams (preClose) instead of waiting for them', async () => {
    const registry = new StreamRegistry()
    const other = Fastify()
    await other.register(ovenSse, { registry, ping: false })
    let finished = false
    other.get('/events', (_request, reply) =>
      reply.sse(async function* ({ signal }) {
        try {
          yield 'hello'
          await new Promise((resolve) => signal.addEventListener('abort', resolve))
        } finally {
          finished = true
        }
      }),
    )
    await other.listen({ port: 0, host: '127.0.0.1' })
    const address = other.server.address()
    const port = typeof address === 'object' && address ? address.port : 0
    const reading = readEvents(`http://127.0.0.1:${port}/events`, { timeout: 10_000 })
    await waitFor('the stream registered', () => registry.size, { until: (n) => n === 1 })
    await other.close()
    expect((await reading).map((event) => event.data)).toEqual(['hello'])
    expect(finished).toBe(true)
  })

  test('a connection limit keyed on the FastifyRequest answers 503, and Fastify stays out', async () => {
    logs.length = 0
    const first = await target.client.raw(`${target.base}/limited`, { 'x-user': 'ada' })
    try {
      expect(first.status).toBe(200)
      const second = await fetch(`${target.base}/limited`, { headers: { 'x-user': 'ada' } })
      expect(second.status).toBe(503)
      expect(second.headers.get('retry-after')).toBe('5')
      await second.text()
      const other = await target.client.raw(`${target.base}/limited`, { 'x-user': 'bob' })
      other.close()
      expect(other.status).toBe(200)
    } finally {
      first.close()
    }
    await waitFor('the sources finished', () => scenario.state().open, { until: (n) => n === 0 })
    // No "Reply was already sent" or other complaint from Fastify.
    expect(logs.filter((line) => (line.level as number) >= 40)).toEqual([])
  })

  test('invalid plugin options fail at register time', async () => {
    const other = Fastify()
    await expect(other.register(ovenSse, { ping: -1 })).rejects.toThrow(/"ping"/)
    await other.close()
  })
})
