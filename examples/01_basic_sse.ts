/**
 * 01 — Fundamental concepts: the Quick Start, the event fields, disconnects.
 *
 * Run:  npx tsx examples/01_basic_sse.ts
 * Then: curl -N http://127.0.0.1:8000/numbers
 *
 * Endpoints:
 *   /numbers            the Quick Start: 10 events, `data: Event 0` … `Event 9`, one a second
 *   /endless            `id` + `data` forever; the server logs when the client goes away
 *   /range/<a>/<b>      the same as /numbers over a range of your choice
 *   /fields             every field of an event: data, event, id, retry, comment, JSON data,
 *                       multi-line data, and a ServerSentEvent built once
 *
 * Environment: PORT (default 8000), TICK_MS (default 1000).
 */

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { type EventInit, ServerSentEvent, sendEventStream } from '../src/node.ts'

const tick = Number(process.env.TICK_MS ?? 1000)

// The Quick Start. A source is any (async) iterable; a function receiving `ctx` gets
// `ctx.signal`, which aborts the moment the client goes away — pass it to anything you await
// so the generator stops at once instead of at its next `yield`.
async function* numbers({ signal }: { signal: AbortSignal }) {
  for (let i = 0; i < 10; i++) {
    yield { data: `Event ${i}` }
    await sleep(tick, undefined, { signal })
  }
}

async function* range(start: number, end: number, signal: AbortSignal) {
  for (let i = start; i <= end; i++) {
    yield { data: `Number: ${i}` }
    await sleep(tick, undefined, { signal })
  }
}

// An endless stream. `finally` runs however the stream ends: the client disconnecting, the
// server shutting down, or an error. It is where you release what the stream holds.
async function* endless({ signal }: { signal: AbortSignal }) {
  let sent = 0
  try {
    for (;;) {
      sent++
      yield { id: String(sent), data: `Event #${sent}` }
      await sleep(tick / 2, undefined, { signal })
    }
  } finally {
    console.log(`Client disconnected after ${sent} events (${String(signal.reason)})`)
  }
}

// Built once, encoded once: a ServerSentEvent is the cheap way to send one event many times.
const notification = new ServerSentEvent({
  data: 'Custom message',
  event: 'notification',
  id: 'msg-123',
  retry: 5000,
})

function fields(): Array<EventInit | ServerSentEvent | string> {
  return [
    'a plain string is sent as data', // data: a plain string is sent as data
    { data: 'named event', event: 'update', id: '1' }, // id / event / data, in that order
    { data: { user: 'ada', n: 1 } }, // non-string data goes through JSON.stringify
    { data: 'line one\nline two' }, // one data: line per line; the client gets both back
    { comment: 'a comment: clients ignore it, proxies see traffic' },
    { retry: 3000 }, // tells the browser to wait 3 s before reconnecting
    notification,
  ]
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const path = url.pathname
  if (path === '/numbers') {
    void sendEventStream(req, res, numbers)
    return
  }
  if (path === '/endless') {
    void sendEventStream(req, res, endless)
    return
  }
  const match = /^\/range\/(\d+)\/(\d+)$/.exec(path)
  if (match) {
    const [, start, end] = match
    void sendEventStream(req, res, ({ signal }) => range(Number(start), Number(end), signal))
    return
  }
  if (path === '/fields') {
    // An array is content too: the stream sends each item, then ends.
    void sendEventStream(req, res, fields())
    return
  }
  res
    .writeHead(404, { 'content-type': 'text/plain' })
    .end('try /numbers, /endless, /range/1/5 or /fields\n')
})

server.listen(Number(process.env.PORT ?? 8000), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(`listening on http://127.0.0.1:${port}`)
  for (const path of ['/numbers', '/endless', '/range/1/5', '/fields']) {
    console.log(`  curl -N http://127.0.0.1:${port}${path}`)
  }
})
