/**
 * `node:http2` (compatibility API) with `sendEventStream`: cleartext (h2c) and TLS with a
 * self-signed certificate made for this run.
 */

import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import {
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from 'node:http2'
import { request as httpsRequest } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EventSource } from 'eventsource'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type Content, sendEventStream } from '../../src/node.ts'
import { waitFor } from '../helpers/wait.ts'
import { type Client, http2Client } from './fixtures/clients.ts'
import { createScenario, FAIL_MESSAGE, PRESET_HEADERS, type Scenario } from './fixtures/scenario.ts'
import { sseScenarios, type Target } from './fixtures/suite.ts'

type Server = Http2Server | Http2SecureServer

/** The app: plain node:http2 handlers; a failed content function gets a 500 from the app. */
function handler(scenario: Scenario) {
  const routes: Record<string, Content<Http2ServerRequest>> = {
    '/events': scenario.events,
    '/once': scenario.once,
    '/fail': scenario.fail,
    '/flood': scenario.flood,
    '/quiet': scenario.quiet,
    '/preset': scenario.once,
  }
  return (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const path = new URL(req.url, 'http://localhost').pathname
    const content = routes[path]
    if (!content) {
      res.writeHead(404).end()
      return
    }
    if (path === '/preset')
      for (const [name, value] of Object.entries(PRESET_HEADERS)) res.setHeader(name, value)
    const options = path === '/quiet' ? scenario.quietOptions : scenario.options
    sendEventStream(req, res, content, options).catch((error: Error) => {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
      res.end(`Internal Server Error: ${error.message}`)
    })
  }
}

interface Running {
  server: Server
  scenario: Scenario
  target: Target
  sessions: number
}

async function start(server: Server, scenario: Scenario, scheme: string, ca?: string) {
  const running = { server, scenario, sessions: 0 } as Running
  server.on('session', () => running.sessions++)
  server.listen(0, '127.0.0.1')
  await new Promise<void>((resolve) => server.once('listening', resolve))
  const base = `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`
  running.target = {
    base,
    client: http2Client(base, ca),
    state: async () => scenario.state(),
    closeAll: () => scenario.closeAll(),
    expectError: ({ status, body }) => {
      expect(status).toBe(500)
      expect(body).toBe(`Internal Server Error: ${FAIL_MESSAGE}`)
    },
  }
  return running
}

async function stop(running: Running | undefined) {
  if (!running) return
  await running.target.client.close()
  await new Promise((resolve) => running.server.close(resolve))
}

/** Many EventSources over the one session of `client`: all get their events, then all stop. */
async function manyStreams(running: Running, client: Client, count: number) {
  const { target, scenario } = running
  const sessionsBefore = running.sessions
  const sources: EventSource[] = []
  let received = 0
  try {
    for (let i = 0; i < count; i++) {
      const source = new EventSource(`${target.base}/events`, { fetch: client.fetch as never })
      source.addEventListener('message', () => received++)
      sources.push(source)
    }
    await waitFor(`${count} unicode events`, () => received, { until: (n) => n === count })
    expect(scenario.state().open).toBe(count)
  } finally {
    for (const source of sources) source.close()
  }
  await waitFor('every source finished', () => scenario.state().open, { until: (n) => n === 0 })
  // All of them went over the client's one connection.
  expect(running.sessions - sessionsBefore).toBeLessThanOrEqual(1)
}

describe('node:http2 cleartext (h2c)', () => {
  let running: Running | undefined
  beforeAll(async () => {
    const scenario = createScenario()
    running = await start(createServer(handler(scenario)), scenario, 'http')
  })
  afterAll(() => stop(running))

  sseScenarios('http2 h2c', () => running!.target, { http2: true })

  test('50 concurrent streams over one connection', async () => {
    await manyStreams(running!, running!.target.client, 50)
  })
})

describe('node:http2 over TLS (self-signed certificate)', () => {
  let running: Running | undefined
  let dir: string | undefined
  let cert = ''
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oven-h2-'))
    const keyFile = join(dir, 'key.pem')
    const certFile = join(dir, 'cert.pem')
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    )
    cert = readFileSync(certFile, 'utf8')
    const scenario = createScenario()
    const server = createSecureServer(
      { key: readFileSync(keyFile), cert, allowHTTP1: true },
      handler(scenario),
    )
    running = await start(server, scenario, 'https', cert)
  })
  afterAll(async () => {
    await stop(running)
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  sseScenarios('http2 tls', () => running!.target, { http2: true })

  test('50 concurrent streams over one connection', async () => {
    await manyStreams(running!, running!.target.client, 50)
  })

  test('an HTTP/1.1 client of the same server gets Connection: keep-alive', async () => {
    const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = httpsRequest(`${running!.target.base}/once`, { ca: cert }, (res) => {
        expect(res.httpVersion).toBe('1.1')
        resolve(res.headers)
        res.resume()
      })
      req.on('error', reject)
      req.end()
    })
    expect(headers.connection).toBe('keep-alive')
    expect(headers['content-type']).toBe('text/event-stream; charset=utf-8')
  })
})
