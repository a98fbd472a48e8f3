/**
 * The resumable chat recipe (examples/resumable-chat) in headless Chromium against a real Oven
 * server: the page asks, the answer streams from a detached run, and the page is reloaded twice
 * during the generation (with tokens produced while it reloads). Every token is shown exactly
 * once, in order, and the page ends with the run's end reason.
 */

import type { Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import { createChatApp } from '../../examples/resumable-chat/app.ts'
import { type Channel, createChannel } from '../../src/index.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'
import { launchChromium } from './chromium.ts'

let browser: Awaited<ReturnType<typeof launchChromium>>
const pageErrors: string[] = []

beforeAll(async () => {
  browser = await launchChromium()
}, 30_000)

afterEach(async () => {
  await closeAllServers()
  expect(pageErrors).toEqual([])
})

afterAll(async () => {
  await browser?.close()
})

const token = (i: number) => `[${i}] `
const shown = (page: Page) => page.evaluate(() => document.querySelector('#answer')!.textContent)

test('a reload mid-answer loses nothing and repeats nothing', async () => {
  const answers: Channel<string>[] = []
  const app = createChatApp(() => {
    const channel = createChannel<string>(100)
    answers.push(channel)
    return channel
  })
  // The stream requests, to check the reloads resumed from the page's saved position.
  const attaches: string[] = []
  const server = await nodeServer((req, res) => {
    if (req.method === 'GET' && req.url?.startsWith('/chat/')) attaches.push(req.url)
    app.handler(req, res)
  })
  const page = await browser.context.newPage()
  page.on('pageerror', (error) => pageErrors.push(error.message))
  const ready = () =>
    page.waitForFunction(() => document.title === 'ready', undefined, { timeout: 10_000 })
  await page.goto(server.url)
  await ready()
  await page.click('#ask button')
  const answer = (await waitFor('the run to start', () => answers[0]))!
  let sent = 0
  const send = async (count: number) => {
    for (let i = 0; i < count; i++) await answer.send(token(sent++))
  }
  const expected = () => Array.from({ length: sent }, (_, i) => token(i)).join('')

  for (let reload = 0; reload < 2; reload++) {
    await send(10)
    await waitFor(`the page to show ${sent} tokens`, () => shown(page), {
      until: (text) => text === expected(),
    })
    // Reload, and produce while the page is away.
    const reloading = page.reload()
    await send(5)
    await reloading
    await ready()
  }
  await send(10)
  answer.close()
  await page.waitForFunction(
    () => document.querySelector('#status')!.textContent === 'done',
    undefined,
    {
      timeout: 10_000,
    },
  )
  expect(await shown(page)).toBe(expected())
  expect(sent).toBe(40)
  expect(attaches).toHaveLength(3)
  expect(attaches[0]).not.toContain('lastEventId')
  for (const url of attaches.slice(1)) expect(url).toMatch(/\?lastEventId=[0-9a-z]+-\d+$/)
  await app.runs.close()
  await page.close()
}, 60_000)
