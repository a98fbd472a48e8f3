/**
 * Accept negotiation: the pure header check, and one route serving SSE or JSON on Node
 * (Express) and on the web path (a fetch handler on @hono/node-server).
 */

import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { EventSource } from 'eventsource'
import express from 'express'
import { afterEach, describe, expect, test } from 'vitest'
import {
  acceptsEventStream,
  EventSourceResponse,
  requestAcceptsEventStream,
} from '../../src/index.ts'
import { incomingAcceptsEventStream, sendEventStream } from '../../src/node.ts'
import { closeAllServers, webServer } from '../helpers/servers.ts'

describe('acceptsEventStream', () => {
  test.each([
    ['text/event-stream', true],
    ['TEXT/Event-Stream; charset=utf-8', true],
    ['application/json, text/event-stream', true],
    ['text/event-stream, application/json;q=0.9', true],
    ['text/event-stream;q=0.5, application/json', false],
    ['application/json;q=0.9, text/event-stream;q=0.9', true],
    ['text/event-stream;q=0', false],
    ['text/event-stream;q=0.001', true],
    ['*/*', false],
    ['text/*', false],
    ['text/event-stream, */*;q=0.1', true],
    ['*/*, text/event-stream;q=0.5', false],
    ['application/json', false],
    ['text/event-streamx', false],
    ['text/event-stream;q=abc', false],
    ['text/event-stream;q=2', false],
    [' , ;, text/event-stream ', true],
    ['', false],
    [null, false],
    [undefined, false],
  ])('%j -> %s', (header, expected) => {
    expect(acceptsEventStream(header)).toBe(expected)
  })

  test('wrappers read the Accept header of a web Request and of a Node request', () => {
    const request = new Request('http://localhost/', { headers: { accept: 'text/event-stream' } })
    expect(requestAcceptsEventStream(request)).toBe(true)
    expect(requestAcceptsEventStream(new Request('http://localhost/'))).toBe(false)
    expect(incomingAcceptsEventStream({ headers: { accept: 'text/event-stream' } })).toBe(true)
    expect(incomingAcceptsEventStream({ headers: {} })).toBe(false)
  })
})

describe('one route, SSE or JSON', () => {
  const servers: Server[] = []
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
    await closeAllServers()
  })

  async function expressBase(): Promise<string> {
    const app = express()
    app.get('/price', (req, res) => {
      if (!incomingAcceptsEventStream(req)) return void res.json({ price: 1 })
      return sendEventStream(req, res, [{ data: { price: 1 } }])
    })
    const server = app.listen(0, '127.0.0.1')
    servers.push(server)
    await new Promise<void>((resolve) => server.once('listening', resolve))
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  async function webBase(): Promise<string> {
    const server = await webServer((request) =>
      requestAcceptsEventStream(request)
        ? new EventSourceResponse([{ data: { price: 1 } }], { request })
        : Response.json({ price: 1 }),
    )
    return server.url
  }

  test.each([
    ['node (Express)', expressBase],
    ['web', webBase],
  ])('%s: fetch gets JSON, EventSource gets the stream', async (_name, start) => {
    const base = await start()
    const json = await fetch(`${base}/price`)
    expect(json.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await json.json()).toEqual({ price: 1 })
    const source = new EventSource(`${base}/price`)
    try {
      const data = await new Promise<string>((resolve, reject) => {
        source.onmessage = (event) => resolve(event.data)
        source.onerror = () => reject(new Error('EventSource failed'))
      })
      expect(data).toBe('{"price":1}')
    } finally {
      source.close()
    }
  })
})
