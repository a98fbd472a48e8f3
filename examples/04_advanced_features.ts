/**
 * 04 — Advanced features: custom pings, send timeouts, custom headers and separators, error
 * handling, a producer feeding a channel (`dataSender`), and a connection limit.
 *
 * Run:  npx tsx examples/04_advanced_features.ts
 * Then: curl -N http://127.0.0.1:8000/custom-ping
 *
 * Endpoints:
 *   /custom-ping       10 `event: custom` events, each after a custom two-line comment ping
 *   /error-demo        errors the client should know about are events: `error` (the stream goes
 *                      on), then `fatal_error` (the stream ends)
 *   /crash             the source throws: `onError` reports it, the stream ends cleanly, every
 *                      other stream goes on
 *   /custom-separator  `sep: '\n'`, multi-line data
 *   /proxy-friendly    your own `Cache-Control` and headers; `onClose` runs cleanup
 *   /flood             4 KB events as fast as the client takes them; a client that stops
 *                      reading is dropped after SEND_TIMEOUT_MS (reason `timeout`)
 *   /channel           `dataSender` produces into a bounded channel; the channel is the content
 *   /limited           at most MAX_STREAMS streams at once; the next gets 503 + Retry-After
 *
 * Environment: PORT (default 8000), TICK_MS (default 2000), PING_MS (default 3000),
 * SEND_TIMEOUT_MS (default 10000), MAX_STREAMS (default 2).
 */

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  type CloseReason,
  ConnectionLimiter,
  createChannel,
  type EventInit,
  ServerSentEvent,
  type StreamContext,
  sendEventStream,
} from '../src/node.ts'

const tick = Number(process.env.TICK_MS ?? 2000)
const pingInterval = Number(process.env.PING_MS ?? 3000)
const sendTimeout = Number(process.env.SEND_TIMEOUT_MS ?? 10_000)
const maxStreams = Number(process.env.MAX_STREAMS ?? 2)

type Ctx = StreamContext<IncomingMessage>

async function* messages({ signal }: Ctx) {
  for (let i = 1; i <= 10; i++) {
    // Idle for longer than PING_MS, so a custom ping shows between two events.
    await sleep(pingInterval + tick / 2, undefined, { signal })
    yield { id: String(i), event: 'custom', data: `Message ${i} with custom (invisible) ping` }
  }
}

// A ping is sent only after PING_MS without any other write. It can be any content item; a
// comment is invisible to EventSource, and its line break becomes two comment lines.
const customPing = () =>
  new ServerSentEvent({ comment: `invisible ping at\n${new Date().toISOString()}` })

// Expected failures are part of the protocol: send them as events the client can handle.
async function* errorDemo({ signal }: Ctx) {
  for (let i = 1; i <= 6; i++) {
    await sleep(tick / 4, undefined, { signal })
    if (i === 3) {
      yield {
        event: 'error',
        data: 'Error: Simulated processing error. Continuing with next items...',
      }
    } else if (i === 6) {
      yield { event: 'fatal_error', data: 'Connection error occurred. Stream ending.' }
      return
    } else {
      yield { id: String(i), event: 'success', data: `Item ${i} processed` }
    }
  }
}

// Unexpected failures: the stream ends (reason `error`), the error goes to `onError` (the
// default logs it), and the process and every other stream go on. No error text reaches the
// client: it sees a clean end and reconnects.
async function* crash({ signal }: Ctx) {
  yield { data: 'about to fail' }
  await sleep(tick / 4, undefined, { signal })
  throw new Error('database went away')
}

async function* multiline({ signal }: Ctx) {
  for (let i = 1; i <= 4; i++) {
    yield { event: 'multiline', data: `Line 1 of event ${i}\nLine 2 of event ${i}\nLine 3` }
    await sleep(tick / 2, undefined, { signal })
  }
}

// A client that stops reading (a suspended curl, a frozen tab): every write is awaited, so the
// generator waits too and memory stays bounded; `sendTimeout` then ends the stream.
async function* flood() {
  const padding = 'x'.repeat(4096)
  for (let i = 0; ; i++) yield { id: String(i), data: padding }
}

function closeLogger(name: string) {
  return (reason: CloseReason) => console.log(`${name}: closed (${reason})`)
}

// A connection limit shared by every request of the route. Past it, the client gets 503 with
// `Retry-After` before anything is streamed, and the stream closes with reason `rejected`
// (the source is never started). A browser's EventSource stops on a non-200 answer, so your
// client code decides when to try again (honour Retry-After). `key` would add a per-user or
// per-IP limit: `new ConnectionLimiter({ max, maxPerKey: 6, key: (req) => req.socket.remoteAddress })`.
const limit = new ConnectionLimiter<IncomingMessage>({ max: maxStreams, retryAfter: 5000 })

function limited(req: IncomingMessage, res: ServerResponse): void {
  void sendEventStream(req, res, messages, {
    limit,
    onClose: (reason) =>
      console.log(`limited: closed (${reason}), open: ${limit.size}/${limit.max}`),
  })
}

function channelStream(req: IncomingMessage, res: ServerResponse): void {
  // The producer runs beside the stream and is aborted with it (`ctx.signal`). `send` waits
  // while the channel is full, so a slow client holds the producer back.
  const channel = createChannel<EventInit>(10)
  void sendEventStream(req, res, channel, {
    async dataSender({ signal }) {
      try {
        for (let i = 1; i <= 5; i++) {
          await channel.send({ event: 'produced', data: `Item ${i}` })
          await sleep(tick / 4, undefined, { signal })
        }
      } finally {
        channel.close()
      }
    },
    onClose: closeLogger('channel'),
  })
}

const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname
  switch (path) {
    case '/custom-ping':
      void sendEventStream(req, res, messages, { ping: pingInterval, pingMessage: customPing })
      return
    case '/error-demo':
      void sendEventStream(req, res, errorDemo, { ping: pingInterval })
      return
    case '/crash':
      void sendEventStream(req, res, crash, {
        onError: (error) => console.log(`crash: stream failed: ${(error as Error).message}`),
        onClose: closeLogger('crash'),
      })
      return
    case '/custom-separator':
      void sendEventStream(req, res, multiline, { sep: '\n' })
      return
    case '/proxy-friendly':
      void sendEventStream(req, res, messages, {
        ping: pingInterval,
        // Your Cache-Control replaces the default `no-store, no-transform`.
        headers: { 'Cache-Control': 'public, max-age=29', 'X-Custom-Header': 'proxy-optimized' },
        onClose: (reason) => console.log(`proxy-friendly: cleanup after ${reason}`),
      })
      return
    case '/flood':
      void sendEventStream(req, res, flood, { sendTimeout, onClose: closeLogger('flood') })
      return
    case '/channel':
      channelStream(req, res)
      return
    case '/limited':
      limited(req, res)
      return
    default:
      res.writeHead(404, { 'content-type': 'text/plain' })
      res.end(
        'try /custom-ping, /error-demo, /crash, /custom-separator, /proxy-friendly, /flood, /channel, /limited\n',
      )
  }
})

server.listen(Number(process.env.PORT ?? 8000), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(`listening on http://127.0.0.1:${port}`)
})
