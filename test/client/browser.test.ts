/**
 * The client in headless Chromium: `src/client.ts` bundled with esbuild (as an application's
 * bundler would) and loaded into a page, against Oven's `sendEventStream` on Node — the same
 * scenario as the Bun and Deno runs (a POST whose token is refreshed after each 401, two cuts
 * in the middle of an event, `oven-end`), then a page reload that resumes a broadcast topic
 * from the position the page kept in `sessionStorage`.
 */

import type { ServerResponse } from 'node:http'
import { build } from 'esbuild'
import type { BrowserContext } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { Broadcaster } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { launchChromium } from '../browser/chromium.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'
import {
  dataOf,
  type ScenarioLog,
  type ScenarioResult,
  scenarioRoutes,
  TOTAL,
} from './fixtures/scenario-server.ts'

let browser: Awaited<ReturnType<typeof launchChromium>>
let context: BrowserContext
let bundle: string

beforeAll(async () => {
  const result = await build({
    entryPoints: [new URL('../../src/client.ts', import.meta.url).pathname],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
  })
  bundle = result.outputFiles[0]!.text
  browser = await launchChromium()
  context = browser.context
}, 30_000)

afterAll(async () => {
  await closeAllServers()
  await browser?.close()
})

function page(res: ServerResponse, script: string): void {
  res.writeHead(200, { 'content-type': 'text/html' })
  res.end(`<!doctype html><meta charset="utf-8"><title>client</title>
<script type="module">${script}</script>`)
}

test('in Chromium: POST, token refresh on 401, two cuts mid-event, oven-end', async () => {
  const log: ScenarioLog = { requests: [] }
  const server = await nodeServer(
    scenarioRoutes(log, (req, res) => {
      if (req.url === '/client.js') {
        return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle)
      }
      if (req.url === '/') {
        return page(
          res,
          `import { connect } from '/client.js'
          let token = ''
          const events = [], failures = [], requests = []
          const stream = connect('/stream', {
            method: 'POST',
            body: JSON.stringify({ prompt: 'count' }),
            headers: (info) => {
              requests.push({ lastEventId: info.lastEventId, delivered: events.length })
              return { authorization: 'Bearer ' + token, 'content-type': 'application/json' }
            },
            retryDelay: 1,
            jitter: 0,
            shouldRetry: async (failure) => {
              failures.push(failure.kind + (failure.status ? ' ' + failure.status : ''))
              if (failure.status !== 401) return failure.delay !== undefined
              token = await (await fetch('/token')).text()
              return 0
            },
          })
          for await (const event of stream) events.push({ event: event.event, data: event.data, id: event.id ?? null })
          const info = await stream.closed
          window.result = { events, failures, requests, close: { reason: info.reason, lastEventId: info.lastEventId } }`,
        )
      }
      res.writeHead(404).end()
    }),
  )
  const tab = await context.newPage()
  const errors: string[] = []
  tab.on('pageerror', (error) => errors.push(error.message))
  await tab.goto(server.url)
  await tab.waitForFunction(() => 'result' in window, undefined, { timeout: 15_000 })
  const result = (await tab.evaluate(
    () => (window as unknown as { result: unknown }).result,
  )) as ScenarioResult
  expect(errors).toEqual([])
  expect(result.events).toEqual([
    ...Array.from({ length: TOTAL }, (_, k) => ({
      event: 'token',
      data: dataOf(k + 1),
      id: String(k + 1),
    })),
    { event: 'oven-end', data: '{"reason":"done"}', id: null },
  ])
  expect(result.close).toEqual({ reason: 'end-event', lastEventId: String(TOTAL) })
  for (const { lastEventId, delivered } of result.requests) {
    expect(lastEventId).toBe(delivered === 0 ? '' : result.events[delivered - 1]!.id)
  }
  expect(log.requests.map((r) => r.lastEventId ?? '')).toEqual(
    result.requests.map((r) => r.lastEventId),
  )
  expect(log.requests.filter((r) => r.accepted).map((r) => r.auth)).toEqual([
    'Bearer t1',
    'Bearer t2',
    'Bearer t3',
  ])
  await tab.close()
})

test('in Chromium: a reloaded page resumes a broadcast topic from the position it kept in sessionStorage', async () => {
  const hub = new Broadcaster()
  const server = await nodeServer((req, res) => {
    if (req.url === '/client.js') {
      return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle)
    }
    if (req.url === '/news')
      return void sendEventStream(req, res, (ctx) => hub.subscribe(['news'], ctx))
    if (req.url === '/') {
      return page(
        res,
        `import { connect } from '/client.js'
        window.shown = []
        connect('/news', {
          lastEventId: sessionStorage.getItem('news') ?? '',
          onEvent: (event) => {
            window.shown.push(event.data)
            sessionStorage.setItem('news', event.lastEventId)
          },
        })`,
      )
    }
    res.writeHead(404).end()
  })
  const tab = await context.newPage()
  const shown = () => tab.evaluate(() => (window as unknown as { shown: string[] }).shown)
  await tab.goto(server.url)
  await waitFor('the page to subscribe', () => hub.subscribers('news'), { until: (n) => n === 1 })
  for (let i = 1; i <= 3; i++) await hub.publish('news', `n${i}`)
  await waitFor('the page to show 3 items', shown, { until: (items) => items.length === 3 })
  expect(await shown()).toEqual(['n1', 'n2', 'n3'])

  // The user reloads; meanwhile two items are published.
  await tab.goto('about:blank')
  await waitFor('the old page to be gone', () => hub.subscribers('news'), { until: (n) => n === 0 })
  await hub.publish('news', 'n4')
  await hub.publish('news', 'n5')
  await tab.goto(server.url)
  await waitFor('the reloaded page to catch up', shown, { until: (items) => items.length === 2 })
  await hub.publish('news', 'n6')
  await waitFor('the live item', shown, { until: (items) => items.length === 3 })
  expect(await shown()).toEqual(['n4', 'n5', 'n6'])
  await tab.close()
  await hub.close()
})
