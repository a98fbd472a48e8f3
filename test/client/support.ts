/**
 * What the client tests share: a server that records every request it gets, and a way to read a
 * client stream to its end with a deadline.
 */

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ClientEvent } from '../../src/client/types.ts'
import type { EventStream } from '../../src/client.ts'
import { nodeServer, type TestServer } from '../helpers/servers.ts'

/** One request a {@link recordingServer} received. */
export interface Received {
  method: string
  path: string
  headers: IncomingMessage['headers']
  body: string
}

/** A server that records each request (method, path, headers, body) before handling it. */
export async function recordingServer(
  handle: (req: IncomingMessage, res: ServerResponse, request: Received, index: number) => void,
): Promise<TestServer & { requests: Received[] }> {
  const requests: Received[] = []
  const server = await nodeServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const request: Received = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      }
      requests.push(request)
      handle(req, res, request, requests.length - 1)
    })
  })
  return Object.assign(server, { requests })
}

/** The head of an event stream, written by hand for the misbehaving servers. */
export const SSE_HEAD = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-store',
} as const

/**
 * Reads `stream` to its end (or its failure) within `timeout` ms; on the deadline it closes the
 * stream and fails, saying how many events had come.
 */
export async function readAll<E extends ClientEvent<unknown>>(
  stream: EventStream<E>,
  timeout = 10_000,
): Promise<E[]> {
  const events: E[] = []
  const timer = setTimeout(() => stream.close(), timeout)
  try {
    for await (const event of stream) events.push(event)
  } finally {
    clearTimeout(timer)
  }
  const info = await stream.closed
  if (info.reason === 'aborted') {
    throw new Error(`readAll: not ended in ${timeout} ms; ${events.length} event(s) so far`)
  }
  return events
}

/** The events as `id:data` strings, the form most assertions compare. */
export const idsAndData = (events: readonly ClientEvent[]) =>
  events.map((event) => `${event.id ?? ''}:${event.data}`)
