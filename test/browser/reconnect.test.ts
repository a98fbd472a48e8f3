/**
 * The README's client-side recovery (examples/browser/reconnect.js) in headless Chromium,
 * against a real Oven server: it comes back after a 503 and after a dropped connection,
 * resuming without a gap or a duplicate, and a finite stream that ends with `event: end`
 * is not reconnected — while a plain `EventSource` on the same stream is.
 */

import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import { ConnectionLimiter, type StreamContext } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { closeAllServers, nodeServer, type TestServer } from '../helpers/servers.ts'
import { gate } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'
import { launchChromium } from './chromium.ts'

const SCRIPT = readFileSync(new URL('../../examples/browser/reconnect.js', import.meta.url))
const PAGE = `<!doctype html><meta charset="utf-8"><title>reconnect</title>
<script type="module">
  import { openEventStream } from '/reconnect.js'
  window.openEventStream = openEventStream
  document.title = 'ready'
</script>`

type Status = 'open' | 'retrying' | 'ended' | 'closed'

declare global {
  interface Window {
    openEventStream(
      url: string,
      options: {
        on?: Record<string, (event: MessageEvent) => void>
        onStatus?: (status: Status, detail: { attempt: number; delay: number }) => void
        initialDelay?: number
        maxDelay?: number
      },
    ): { close(): void }
    received: string[]
    statuses: Status[]
  }
}

let context: BrowserContext
let browser: Awaited<ReturnType<typeof launchChromium>>
const pageErrors: string[] = []

beforeAll(async () => {
  browser = await launchChromium()
  context = browser.context
}, 30_000)

afterEach(async () => {
  await closeAllServers()
  expect(pageErrors).toEqual([])
})

afterAll(async () => {
  await browser?.close()
})

/** Serves the page, the script and the stream (at `/stream`: `route`); nothing else. */
function serve(route: (req: IncomingMessage, res: ServerResponse) => void) {
  return nodeServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (path === '/stream') route(req, res)
    else if (path === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE)
    else if (path === '/reconnect.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(SCRIPT)
    } else res.writeHead(404).end() // the browser's favicon.ico among others
  })
}

async function open(server: TestServer): Promise<Page> {
  const page = await context.newPage()
  page.on('pageerror', (error) => pageErrors.push(error.message))
  await page.goto(server.url)
  await page.waitForFunction(() => document.title === 'ready', undefined, { timeout: 10_000 })
  return page
}

test('recovers after a 503 and after a dropped connection, resuming without gap or duplicate', async () => {
  // One slot: while a holder keeps it, the browser is answered 503 by Oven's limiter.
  const limit = new ConnectionLimiter<IncomingMessage>({ max: 1, retryAfter: 1000 })
  let rejected = 0
  const resumedFrom: (string | undefined)[] = []
  let dropped = false
  // The drop waits until the page has shown event 3, so the reconnect has an id to resume from.
  const seenThree = gate()

  async function* events({ lastEventId, request, signal }: StreamContext<IncomingMessage>) {
    if (request.url?.includes('holder')) {
      // Holds the only slot until the test lets go.
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
      return
    }
    resumedFrom.push(lastEventId)
    for (let i = Number(lastEventId ?? 0) + 1; i <= 6; i++) {
      if (i === 4 && !dropped) {
        // The network goes away mid-stream: the socket is torn down, no clean end.
        await seenThree.promise
        dropped = true
        request.socket.destroy()
        return
      }
      yield { id: String(i), data: `event ${i}` }
    }
    yield { event: 'end', data: '' }
  }

  const server = await serve((req, res) => {
    void sendEventStream(req, res, events, {
      limit,
      onClose: (reason) => {
        if (reason === 'rejected' && !req.url?.includes('plain')) rejected++
      },
    })
  })
  const holder = new AbortController()
  const held = await fetch(`${server.url}/stream?holder`, { signal: holder.signal })
  expect(held.status).toBe(200)

  const page = await open(server)
  // The control: the browser's own EventSource gives up for good after a 503.
  await page.evaluate(() => {
    const plain = new EventSource('/stream?plain')
    plain.onerror = () => {
      if (plain.readyState === EventSource.CLOSED) document.title = 'plain closed'
    }
  })
  await page.waitForFunction(() => document.title === 'plain closed', undefined, {
    timeout: 10_000,
  })

  await page.evaluate(() => {
    window.received = []
    window.statuses = []
    window.openEventStream('/stream', {
      initialDelay: 50,
      maxDelay: 400,
      on: { message: (event) => window.received.push(`${event.lastEventId}:${event.data}`) },
      onStatus: (status) => window.statuses.push(status),
    })
  })

  // Two 503s in a row: the browser's EventSource alone would have given up after the first.
  await waitFor('two connections answered 503', () => rejected, { until: (n) => n >= 2 })
  holder.abort()
  await page.waitForFunction(() => window.received.length === 3, undefined, { timeout: 10_000 })
  seenThree.open()

  await page.waitForFunction(() => window.statuses.at(-1) === 'ended', undefined, {
    timeout: 10_000,
  })
  const { received, statuses } = await page.evaluate(() => ({
    received: window.received,
    statuses: window.statuses,
  }))
  expect(received).toEqual([1, 2, 3, 4, 5, 6].map((i) => `${i}:event ${i}`))
  // The first 200 started from scratch; the one after the drop resumed after event 3.
  expect(resumedFrom).toEqual([undefined, '3'])
  // A retry after each 503 (two or more: the slot is free only once the holder's stream has
  // ended) and after the drop; then the end.
  expect(statuses).toEqual([
    ...Array.from({ length: rejected }, () => 'retrying'),
    'open',
    'retrying',
    'open',
    'ended',
  ])
  await page.close()
})

test('a finite stream that ends with `event: end` is not reconnected; a plain EventSource is', async () => {
  const requests = new Map<string, number>()
  const server = await serve((req, res) => {
    const client = new URL(req.url ?? '/', 'http://localhost').searchParams.get('client') ?? ''
    requests.set(client, (requests.get(client) ?? 0) + 1)
    // `retry: 20`: a browser that reconnects after the end does so within 20 ms.
    void sendEventStream(req, res, [
      { retry: 20 },
      { id: '1', data: 'one' },
      { id: '2', data: 'two' },
      { event: 'end', data: '' },
    ])
  })
  const page = await open(server)

  await page.evaluate(() => {
    window.received = []
    window.statuses = []
    window.openEventStream('/stream?client=wrapped', {
      on: { message: (event) => window.received.push(event.data) },
      onStatus: (status) => window.statuses.push(status),
    })
  })
  await page.waitForFunction(() => window.statuses.includes('ended'), undefined, {
    timeout: 10_000,
  })
  expect(await page.evaluate(() => window.received)).toEqual(['one', 'two'])

  // The control, started after the wrapped stream had ended: the same stream without the
  // `end` handling is reconnected by the browser, which starts it over.
  await page.evaluate(() => {
    const plain = new EventSource('/stream?client=plain')
    plain.onmessage = (event) => window.received.push(`plain ${event.data}`)
  })
  await waitFor('the plain EventSource to reconnect', () => requests.get('plain') ?? 0, {
    until: (n) => n >= 2,
  })
  // The wrapped stream, whose reconnect would have come first, was opened once.
  expect(requests.get('wrapped')).toBe(1)
  expect(await page.evaluate(() => window.statuses)).toEqual(['open', 'ended'])
  await page.close()
})
