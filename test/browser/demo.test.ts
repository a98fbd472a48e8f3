/**
 * The demo page in headless Chromium: every panel receives events, a chat message sent from
 * one page appears in another, a page that drops its connection gets what it missed, and a
 * page that reloads (or opens late) shows what a page that never left shows.
 * A screenshot is saved to artifacts/demo.png (git-ignored).
 */

import { mkdirSync } from 'node:fs'
import type { BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { type RunningExample, runExample, stopAllExamples } from '../examples/run-example.ts'
import { launchChromium } from './chromium.ts'

let demo: RunningExample
let context: BrowserContext
let browser: Awaited<ReturnType<typeof launchChromium>>
const pageErrors: string[] = []

beforeAll(async () => {
  demo = await runExample('demo/server.ts', {
    env: { CLOCK_MS: '250', STATS_MS: '250', JOB_STEP_MS: '20' },
  })
  browser = await launchChromium()
  context = browser.context
}, 30_000)

afterAll(async () => {
  await browser?.close()
  await stopAllExamples()
})

async function open(): Promise<Page> {
  const page = await context.newPage()
  page.on('pageerror', (error) => pageErrors.push(error.message))
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text())
  })
  await page.goto(demo.url)
  await page.waitForSelector('#status[data-state="open"]', { timeout: 10_000 })
  return page
}

const messages = (page: Page) => page.locator('#messages li').allTextContents()

/** What a user sees of the chat, the job and the stream position (not the clock or stats). */
interface VisibleState {
  chat: string[]
  progress: number
  percent: string
  stage: string
  job: string
  lastId: string
}

// Runs in the page, as the text of an expression (see `expectSameState`).
const READ_STATE = `(() => {
  const text = (id) => document.getElementById(id)?.textContent ?? ''
  return {
    chat: [...document.querySelectorAll('#messages li')].map((li) => li.textContent ?? ''),
    progress: document.getElementById('job-progress')?.value ?? -1,
    percent: text('job-percent'),
    stage: text('job-stage'),
    job: text('job-id'),
    lastId: text('last-id'),
  }
})()`

const visibleState = (page: Page) => page.evaluate<VisibleState>(READ_STATE)

/**
 * Waits until `page` shows what `reference` shows, then asserts it: on a timeout the
 * assertion reports both states.
 */
async function expectSameState(page: Page, reference: Page): Promise<VisibleState> {
  const expected = await visibleState(reference)
  // Playwright evaluates a string as an expression in the page.
  const same = `JSON.stringify(${READ_STATE}) === ${JSON.stringify(JSON.stringify(expected))}`
  await page.waitForFunction(same, undefined, { timeout: 10_000 }).catch((error: Error) => {
    // Only the timeout is left to the assertion below; anything else (a closed page) is not.
    if (error.name !== 'TimeoutError') throw error
  })
  expect(await visibleState(page)).toEqual(expected)
  return expected
}

test('the demo page streams every panel, chats between pages, resumes after a drop, shows the same state after a reload and across a server restart', async () => {
  const first = await open()
  const second = await open()

  for (const page of [first, second]) {
    // Clock: the time is shown and keeps changing.
    await page.waitForFunction(() => /\d/.test(document.getElementById('clock')?.textContent ?? ''))
    const before = await page.locator('#clock').textContent()
    await page.waitForFunction(
      (previous) => document.getElementById('clock')?.textContent !== previous,
      before,
      { timeout: 5000 },
    )
    // Stats: both pages are counted.
    await page.waitForFunction(
      () => document.querySelector('[data-stat="open tabs (this server)"]')?.textContent === '2',
      undefined,
      { timeout: 5000 },
    )
  }

  // Chat: sent from the first page, seen on the second.
  await first.fill('#chat-user', 'alice')
  await first.fill('#chat-text', 'hello from page one')
  await first.click('#chat-form button')
  await second.waitForFunction(
    () => document.getElementById('messages')?.textContent?.includes('hello from page one'),
    undefined,
    { timeout: 5000 },
  )
  expect((await messages(second))[0]).toMatch(/^alice: hello from page one /)

  // Job: started on one page, its progress bar fills on both.
  await first.click('#job-start')
  for (const page of [first, second]) {
    await page.waitForFunction(
      () => (document.getElementById('job-progress') as HTMLProgressElement | null)?.value === 100,
      undefined,
      { timeout: 15_000 },
    )
    expect(await page.locator('#job-stage').textContent()).toBe('done')
  }

  // Resume: the second page drops its stream; a message sent meanwhile arrives after it
  // reconnects with its last event id, exactly once and in order. The page's client
  // (oven-sse/client) sends that id as the Last-Event-ID header on its new connection.
  const lastIdBeforeDrop = await second.locator('#last-id').textContent()
  const resumed = second.waitForRequest((request) => new URL(request.url()).pathname === '/events')
  await second.click('#drop')
  await second.waitForSelector('#status[data-state="closed"]')
  await first.fill('#chat-text', 'sent while you were away')
  await first.click('#chat-form button')
  await first.waitForFunction(() =>
    document.getElementById('messages')?.textContent?.includes('while you were away'),
  )
  await second.waitForSelector('#status[data-state="open"]', { timeout: 10_000 })
  await second.waitForFunction(
    () => document.getElementById('messages')?.textContent?.includes('while you were away'),
    undefined,
    { timeout: 5000 },
  )
  expect((await resumed).headers()['last-event-id']).toBe(lastIdBeforeDrop)
  const seen = await messages(second)
  expect(seen).toHaveLength(2)
  expect(seen[1]).toMatch(/^alice: sent while you were away /)
  // The second page did not receive the job's progress twice either: its bar stays at 100.
  expect(
    await second.locator('#job-progress').evaluate((bar) => (bar as HTMLProgressElement).value),
  ).toBe(100)

  // Reload: the second page comes back showing what the first, which never left, shows: the
  // chat so far, the finished job, the same last event id. Nothing is shown twice.
  await second.reload()
  await second.waitForSelector('#status[data-state="open"]', { timeout: 10_000 })
  const reloaded = await expectSameState(second, first)
  expect(reloaded).toMatchObject({ progress: 100, percent: '100 %', stage: 'done' })
  expect(reloaded.chat).toEqual([
    expect.stringMatching(/^alice: hello from page one /),
    expect.stringMatching(/^alice: sent while you were away /),
  ])
  expect(reloaded.lastId).toMatch(/^[0-9a-z]+-\d+$/)

  // It goes on live, and a reload during a job shows the job going on to the end.
  await first.fill('#chat-text', 'after the reload')
  await first.click('#chat-form button')
  await first.click('#job-start')
  await second.waitForFunction(
    () => document.getElementById('messages')?.textContent?.includes('after the reload'),
    undefined,
    { timeout: 5000 },
  )
  await second.reload()
  for (const page of [first, second]) {
    await page.waitForFunction(
      () =>
        document.getElementById('job-stage')?.textContent === 'done' &&
        document.getElementById('job-id')?.textContent?.startsWith('job-2-'),
      undefined,
      { timeout: 15_000 },
    )
  }
  const after = await expectSameState(second, first)
  expect(after.chat).toHaveLength(3)
  expect(after.chat[2]).toMatch(/^alice: after the reload /)

  // A page opened now starts from the same state too.
  const third = await open()
  await expectSameState(third, first)

  mkdirSync('artifacts', { recursive: true })
  await first.screenshot({ path: 'artifacts/demo.png', fullPage: true })
  expect(pageErrors).toEqual([])

  // The server stops (SIGTERM): the pages hear its farewell, then try to reconnect (and the
  // browser logs the refused connections, so this comes after the check of page errors).
  demo.child.kill('SIGTERM')
  for (const page of [first, second, third]) {
    await page.waitForFunction(
      () => document.getElementById('status')?.textContent === 'server stopped: reconnecting…',
      undefined,
      { timeout: 10_000 },
    )
  }
  expect(await demo.exited).toEqual({ code: 0, signal: null })

  // A new server on the same port (the in-memory history is gone): the pages reconnect with
  // an id of the old history, are told it is lost, and take the new server's snapshot.
  demo = await runExample('demo/server.ts', {
    env: { CLOCK_MS: '250', STATS_MS: '250', JOB_STEP_MS: '20', PORT: new URL(demo.url).port },
  })
  for (const page of [first, second, third]) {
    await page.waitForFunction(
      () =>
        document.getElementById('status')?.dataset.state === 'open' &&
        /-0$/.test(document.getElementById('last-id')?.textContent ?? '') &&
        document.getElementById('messages')?.textContent?.includes('history lost'),
      undefined,
      { timeout: 15_000 },
    )
  }
  const restarted = await expectSameState(second, first)
  await expectSameState(third, first)
  expect(restarted).toMatchObject({
    chat: ['— history lost: earlier messages may be missing —'],
    progress: 0,
    stage: 'idle',
    lastId: expect.stringMatching(/^[0-9a-z]+-0$/),
  })
}, 90_000)
