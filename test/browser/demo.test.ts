/**
 * The demo page in headless Chromium: every panel receives events, a chat message sent from
 * one page appears in another, and a page that drops its connection gets what it missed.
 * A screenshot is saved to artifacts/demo.png (git-ignored).
 */

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { type RunningExample, runExample, stopAllExamples } from '../examples/run-example.ts'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

let demo: RunningExample
let context: BrowserContext
let profile: string
const pageErrors: string[] = []

beforeAll(async () => {
  demo = await runExample('demo/server.ts', {
    env: { CLOCK_MS: '250', STATS_MS: '250', JOB_STEP_MS: '20' },
  })
  // A fresh profile for every run; never a downloaded browser.
  profile = mkdtempSync(join(tmpdir(), 'oven-chromium-'))
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 800 },
  })
}, 30_000)

afterAll(async () => {
  await context?.close()
  if (profile) rmSync(profile, { recursive: true, force: true })
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

test('the demo page streams every panel, chats between pages and resumes after a drop', async () => {
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
  // reconnects with its last event id, exactly once and in order.
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
  const seen = await messages(second)
  expect(seen).toHaveLength(2)
  expect(seen[1]).toMatch(/^alice: sent while you were away /)
  // The second page did not receive the job's progress twice either: its bar stays at 100.
  expect(
    await second.locator('#job-progress').evaluate((bar) => (bar as HTMLProgressElement).value),
  ).toBe(100)

  // A reloaded tab resumes too: it sends its last id (kept in sessionStorage) as `lastEventId`,
  // so it is not told to reset, and it gets messages sent from then on.
  await second.reload()
  await second.waitForSelector('#status[data-state="open"]', { timeout: 10_000 })
  await first.fill('#chat-text', 'after the reload')
  await first.click('#chat-form button')
  await second.waitForFunction(
    () => document.getElementById('messages')?.textContent?.includes('after the reload'),
    undefined,
    { timeout: 5000 },
  )
  expect(await messages(second)).toEqual([expect.stringMatching(/^alice: after the reload /)])

  mkdirSync('artifacts', { recursive: true })
  await first.screenshot({ path: 'artifacts/demo.png', fullPage: true })
  expect(pageErrors).toEqual([])
}, 60_000)
