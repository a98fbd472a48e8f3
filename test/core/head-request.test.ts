/**
 * A HEAD request (a load balancer's health check, `curl -I`) asks for the head and no body. It
 * gets the stream's head and the response ends at once: the source is not pulled, the stream
 * leaves the shutdown registry, `onClose` says `done`, and a keep-alive connection is free for
 * the next request. Before, the stream ran on with every write discarded, pinging for as long as
 * the client kept the connection open, and a request sent next on that connection waited behind
 * it for ever.
 */

import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { afterEach, expect, test } from 'vitest'
import {
  type CloseReason,
  EventSourceResponse,
  openEventSourceResponse,
  StreamRegistry,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { closeAllServers, nodeServer, webServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'

afterEach(closeAllServers)

interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** One request on `agent`'s connection; fails naming it if no complete answer comes in 5 s. */
function send(agent: Agent, url: string, method: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, agent }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.setTimeout(5000, () =>
      req.destroy(new Error(`${method} ${url}: no complete answer in 5 s`)),
    )
    req.on('error', reject)
    req.end()
  })
}

/** A source that records whether it was pulled and whether it was closed. */
function recordingSource() {
  const seen = { pulled: 0, closed: false }
  async function* source() {
    try {
      for (;;) {
        seen.pulled++
        yield { data: 'tick' }
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    } finally {
      seen.closed = true
    }
  }
  return { seen, source }
}

test('node: HEAD gets the head and an ended response; the next request on the connection is answered', async () => {
  const registry = new StreamRegistry()
  const closes: CloseReason[] = []
  const { seen, source } = recordingSource()
  const server = await nodeServer((req, res) => {
    if (req.url === '/next') {
      res.end('next')
      return
    }
    void sendEventStream(req, res, () => source(), {
      registry,
      onClose: (reason) => closes.push(reason),
    })
  })
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    const head = await send(agent, server.url, 'HEAD')
    expect(head.status).toBe(200)
    expect(head.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(head.body).toBe('')
    await waitFor('the HEAD stream to close', () => closes, { until: (c) => c.length === 1 })
    expect(closes).toEqual(['done'])
    expect(registry.size).toBe(0)
    expect(seen).toEqual({ pulled: 0, closed: false })
    // The same connection (one socket in the agent) carries the next request.
    const next = await send(agent, `${server.url}/next`, 'GET')
    expect(next.body).toBe('next')
  } finally {
    agent.destroy()
  }
})

test('node: a content function still decides the status of a HEAD, as of a GET', async () => {
  const server = await nodeServer((req, res) => {
    sendEventStream(req, res, () => {
      throw Object.assign(new Error('who are you?'), { status: 401 })
    }).catch((error: { status: number }) => {
      res.writeHead(error.status).end()
    })
  })
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    expect((await send(agent, server.url, 'HEAD')).status).toBe(401)
    expect((await send(agent, server.url, 'GET')).status).toBe(401)
  } finally {
    agent.destroy()
  }
})

test('web: HEAD gets the head and no body; the source never runs and the stream ends "done"', async () => {
  const registry = new StreamRegistry()
  const closes: CloseReason[] = []
  const { seen, source } = recordingSource()
  const opened = recordingSource()
  const server = await webServer((request) =>
    new URL(request.url).pathname === '/open'
      ? openEventSourceResponse(() => opened.source(), {
          request,
          registry,
          onClose: (reason) => closes.push(reason),
        })
      : new EventSourceResponse(source, {
          request,
          registry,
          onClose: (reason) => closes.push(reason),
        }),
  )
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    for (const path of ['/', '/open']) {
      const head = await send(agent, `${server.url}${path}`, 'HEAD')
      expect(head.status).toBe(200)
      expect(head.headers['content-type']).toBe('text/event-stream; charset=utf-8')
      expect(head.body).toBe('')
    }
    await waitFor('both HEAD streams to close', () => closes, { until: (c) => c.length === 2 })
    expect(closes).toEqual(['done', 'done'])
    expect(registry.size).toBe(0)
    // Neither source was pulled; the one a content function made was closed.
    expect(seen).toEqual({ pulled: 0, closed: false })
    expect(opened.seen.pulled).toBe(0)
  } finally {
    agent.destroy()
  }
})
