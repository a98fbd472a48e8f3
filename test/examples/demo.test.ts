import { afterEach, expect, test, vi } from 'vitest'
import type { SseEvent } from '../../src/testing.ts'
import { startRedis } from '../helpers/redis.ts'
import { follow } from '../helpers/streams.ts'
import { EXAMPLE_TEST_TIMEOUT, runExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)
vi.setConfig({ testTimeout: EXAMPLE_TEST_TIMEOUT })

const env = { CLOCK_MS: '100', STATS_MS: '100', JOB_STEP_MS: '5' }

const chats = (events: SseEvent[]) =>
  events.filter((e) => e.event === 'chat').map((e) => JSON.parse(e.data).text as string)

/** The chat a page shows: its snapshot's messages, then the chat events after it. */
const conversation = (events: SseEvent[]): string[] => {
  const snapshot = events.find((e) => e.event === 'snapshot')
  const kept = snapshot ? (JSON.parse(snapshot.data).messages as Array<{ text: string }>) : []
  return [...kept.map((m) => m.text), ...chats(events)]
}

test('demo server: the page, one stream with clock, stats, chat and job, and resume', async () => {
  const demo = await runExample('demo/server.ts', { env })
  const page = await fetch(demo.url)
  expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
  expect(await page.text()).toContain('<script src="/app.js" type="module"></script>')
  for (const asset of ['/app.js', '/style.css'])
    expect((await fetch(demo.url + asset)).status).toBe(200)

  const tab = follow(`${demo.url}/events`)
  await tab.until(
    'clock and stats',
    (e) => e.some((x) => x.event === 'clock') && e.some((x) => x.event === 'stats'),
  )
  // A page that opens starts with the state so far: nothing yet, at the history's beginning.
  expect(tab.events[0]).toMatchObject({ event: 'snapshot', id: expect.stringMatching(/-0$/) })
  expect(JSON.parse(tab.events[0]!.data)).toEqual({ messages: [], job: null })
  const stats = JSON.parse(tab.events.find((e) => e.event === 'stats')!.data)
  expect(stats).toMatchObject({ redis: false, tabs: 1, chatSubscribers: 1 })

  const posted = await fetch(`${demo.url}/chat`, {
    method: 'POST',
    body: JSON.stringify({ user: 'ada', text: 'hello' }),
  })
  expect(posted.status).toBe(202)
  expect((await fetch(`${demo.url}/chat`, { method: 'POST', body: '{}' })).status).toBe(400)
  await tab.until('the chat message', (e) => chats(e).includes('hello'))

  expect((await fetch(`${demo.url}/job`, { method: 'POST' })).status).toBe(202)
  expect((await fetch(`${demo.url}/job`, { method: 'POST' })).status).toBe(409)
  await tab.until('the job to finish', (e) =>
    e.some((x) => x.event === 'job' && JSON.parse(x.data).percent === 100),
  )
  const progress = tab.events
    .filter((e) => e.event === 'job')
    .map((e) => JSON.parse(e.data).percent)
  expect(progress).toEqual(Array.from({ length: 51 }, (_, i) => i * 2))
  // Only the snapshot, chat and job events carry ids: the Last-Event-ID of a tab is always a
  // Broadcaster position.
  expect(tab.events.filter((e) => e.id !== undefined).map((e) => e.event)).toEqual([
    'snapshot',
    'chat',
    ...progress.map(() => 'job'),
  ])
  const lastSeen = tab.events.filter((e) => e.id !== undefined).at(-1)!.id!
  await tab.stop()

  // A page that opens now (a new tab, a reload) gets the chat and the finished job at once,
  // positioned at the last event the first tab saw.
  const late = follow(`${demo.url}/events`)
  await late.until('the snapshot', (e) => e.some((x) => x.event === 'snapshot'))
  const snapshot = late.events.find((e) => e.event === 'snapshot')!
  expect(snapshot.id).toBe(lastSeen)
  const state = JSON.parse(snapshot.data)
  expect(state.messages).toEqual([
    expect.objectContaining({ id: tab.events.find((e) => e.event === 'chat')!.id, text: 'hello' }),
  ])
  expect(state.job).toMatchObject({ id: lastSeen, percent: 100, stage: 'done' })
  await late.stop()

  const missed = await fetch(`${demo.url}/chat`, {
    method: 'POST',
    body: JSON.stringify({ user: 'ada', text: 'missed' }),
  })
  expect(missed.status).toBe(202)
  // A tab that resumes gets what it missed, and no snapshot.
  const back = follow(`${demo.url}/events`, { lastEventId: lastSeen })
  await back.until('the missed message', (e) => chats(e).length > 0)
  expect(chats(back.events)).toEqual(['missed'])
  expect(back.events.some((e) => e.event === 'snapshot')).toBe(false)
  await back.stop()
})

test('demo server: a snapshot keeps the last 100 messages and is consistent with the stream', async () => {
  const demo = await runExample('demo/server.ts', { env })
  const post = (text: string) =>
    fetch(`${demo.url}/chat`, { method: 'POST', body: JSON.stringify({ user: 'ada', text }) })
  for (let n = 1; n <= 105; n++) expect((await post(`m${n}`)).status).toBe(202)
  // Pages open while messages keep coming: each one's snapshot plus what follows it is the
  // whole conversation, without a gap or a repeat.
  const pages = [follow(`${demo.url}/events`)]
  for (let n = 106; n <= 120; n++) {
    expect((await post(`m${n}`)).status).toBe(202)
    if (n % 5 === 0) pages.push(follow(`${demo.url}/events`))
  }
  for (const page of pages) {
    await page.until('the last message', (e) => conversation(e).includes('m120'))
    const snapshot = page.events.find((e) => e.event === 'snapshot')!
    expect(JSON.parse(snapshot.data).messages.length).toBeLessThanOrEqual(100)
    const seen = conversation(page.events)
    const first = Number(seen[0]!.slice(1))
    expect(seen).toEqual(Array.from({ length: 121 - first }, (_, i) => `m${first + i}`))
    await page.stop()
  }
  // The board's subscription is woken in the same burst as the pages' ones, so once a page has
  // received m120 the board has it too: a snapshot taken now holds exactly the last 100.
  const last = follow(`${demo.url}/events`)
  await last.until('the snapshot', (e) => e.some((x) => x.event === 'snapshot'))
  const kept = JSON.parse(last.events.find((e) => e.event === 'snapshot')!.data).messages
  expect(kept.map((m: { text: string }) => m.text)).toEqual(
    Array.from({ length: 100 }, (_, i) => `m${21 + i}`),
  )
  await last.stop()
})

test('demo server with REDIS_URL: two processes share the chat, the job and resume', async () => {
  const redis = await startRedis()
  try {
    const redisEnv = {
      ...env,
      REDIS_URL: redis.url,
      REDIS_PREFIX: 'oven-demo-test',
    }
    const [a, b] = await Promise.all([
      runExample('demo/server.ts', { env: redisEnv }),
      runExample('demo/server.ts', { env: redisEnv }),
    ])
    const tab = follow(`${a!.url}/events`)
    await tab.until('stats from A', (e) => e.some((x) => x.event === 'stats'))
    expect(JSON.parse(tab.events.find((e) => e.event === 'stats')!.data).redis).toBe(true)

    // Posted to B, received by a tab on A. The tab started from its snapshot's position, so
    // a message published after it opened cannot be missed, however late A listens on Redis.
    const post = (url: string, text: string) =>
      fetch(`${url}/chat`, { method: 'POST', body: JSON.stringify({ user: 'ada', text }) })
    expect((await post(b!.url, 'via B')).status).toBe(202)
    await tab.until('the message published on B', (e) => chats(e).includes('via B'))
    expect((await fetch(`${b!.url}/job`, { method: 'POST' })).status).toBe(202)
    await tab.until('the job run by B', (e) =>
      e.some((x) => x.event === 'job' && JSON.parse(x.data).percent === 100),
    )
    const lastSeen = tab.events.filter((e) => e.id !== undefined).at(-1)!.id!
    await tab.stop()

    // A page opening on either process starts from the same state.
    for (const demo of [a!, b!]) {
      const page = follow(`${demo.url}/events`)
      await page.until(`a snapshot at ${lastSeen} from ${demo.url}`, (e) =>
        e.some((x) => x.event === 'snapshot' && x.id === lastSeen),
      )
      const state = JSON.parse(page.events.find((e) => e.event === 'snapshot')!.data)
      expect(state.messages.map((m: { text: string }) => m.text)).toEqual(['via B'])
      expect(state.job).toMatchObject({ percent: 100, stage: 'done' })
      await page.stop()
    }

    // The tab comes back on the other process and resumes from the shared history.
    expect((await post(a!.url, 'missed, sent to A')).status).toBe(202)
    const back = follow(`${b!.url}/events`, { lastEventId: lastSeen })
    await back.until('the missed message, on B', (e) => chats(e).length > 0)
    expect(chats(back.events)).toEqual(['missed, sent to A'])
    expect(back.events.some((e) => e.event === 'oven-reset')).toBe(false)
    await back.stop()
  } finally {
    await stopAllExamples()
    await redis.close()
  }
})
