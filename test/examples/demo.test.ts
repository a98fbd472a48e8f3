import { afterEach, expect, test } from 'vitest'
import { iterateEvents, type SseEvent } from '../../src/testing.ts'
import { startRedis } from '../helpers/redis.ts'
import { runExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)

const env = { CLOCK_MS: '100', STATS_MS: '100', JOB_STEP_MS: '5' }

/** Reads `url` until `done` says so, in the background; `stop()` hangs up. */
function follow(url: string, options: { lastEventId?: string } = {}) {
  const events: SseEvent[] = []
  const controller = new AbortController()
  const reading = (async () => {
    const stream = iterateEvents(url, { ...options, timeout: 30_000, signal: controller.signal })
    for await (const event of stream) events.push(event)
  })().catch(() => {})
  return {
    events,
    async until(predicate: (events: SseEvent[]) => boolean, what: string, timeout = 10_000) {
      const start = Date.now()
      while (!predicate(events)) {
        if (Date.now() - start > timeout) throw new Error(`timed out waiting for ${what}`)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    },
    async stop() {
      controller.abort()
      await reading
    },
  }
}

const chats = (events: SseEvent[]) =>
  events.filter((e) => e.event === 'chat').map((e) => JSON.parse(e.data).text as string)

test('demo server: the page, one stream with clock, stats, chat and job, and resume', async () => {
  const demo = await runExample('demo/server.ts', { env })
  const page = await fetch(demo.url)
  expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
  expect(await page.text()).toContain('<script src="/app.js" type="module"></script>')
  for (const asset of ['/app.js', '/style.css'])
    expect((await fetch(demo.url + asset)).status).toBe(200)

  const tab = follow(`${demo.url}/events`)
  await tab.until(
    (e) => e.some((x) => x.event === 'clock') && e.some((x) => x.event === 'stats'),
    'clock and stats',
  )
  const stats = JSON.parse(tab.events.find((e) => e.event === 'stats')!.data)
  expect(stats).toMatchObject({ redis: false, tabs: 1, chatSubscribers: 1 })

  const posted = await fetch(`${demo.url}/chat`, {
    method: 'POST',
    body: JSON.stringify({ user: 'ada', text: 'hello' }),
  })
  expect(posted.status).toBe(202)
  expect((await fetch(`${demo.url}/chat`, { method: 'POST', body: '{}' })).status).toBe(400)
  await tab.until((e) => chats(e).includes('hello'), 'the chat message')

  expect((await fetch(`${demo.url}/job`, { method: 'POST' })).status).toBe(202)
  expect((await fetch(`${demo.url}/job`, { method: 'POST' })).status).toBe(409)
  await tab.until(
    (e) => e.some((x) => x.event === 'job' && JSON.parse(x.data).percent === 100),
    'the job to finish',
  )
  const progress = tab.events
    .filter((e) => e.event === 'job')
    .map((e) => JSON.parse(e.data).percent)
  expect(progress).toEqual(Array.from({ length: 51 }, (_, i) => i * 2))
  // Only chat and job events carry ids: the Last-Event-ID of a tab is always a Broadcaster id.
  expect(tab.events.filter((e) => e.id !== undefined).map((e) => e.event)).toEqual([
    'chat',
    ...progress.map(() => 'job'),
  ])
  const lastSeen = tab.events.filter((e) => e.id !== undefined).at(-1)!.id!
  await tab.stop()

  await fetch(`${demo.url}/chat`, {
    method: 'POST',
    body: JSON.stringify({ user: 'ada', text: 'missed' }),
  })
  const back = follow(`${demo.url}/events`, { lastEventId: lastSeen })
  await back.until((e) => chats(e).length > 0, 'the missed message')
  expect(chats(back.events)).toEqual(['missed'])
  await back.stop()
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
    await tab.until((e) => e.some((x) => x.event === 'stats'), 'stats from A')
    expect(JSON.parse(tab.events.find((e) => e.event === 'stats')!.data).redis).toBe(true)

    // Posted to B, received by a tab on A.
    const post = (url: string, text: string) =>
      fetch(`${url}/chat`, { method: 'POST', body: JSON.stringify({ user: 'ada', text }) })
    // A tab without Last-Event-ID gets chat from the moment its subscription listens on Redis,
    // which a loaded machine may finish after the first 'stats' event: post warm-ups on B until
    // one reaches A, so the next message cannot fall before the subscription went live.
    for (let tries = 0; !chats(tab.events).some((t) => t.startsWith('warm-up')); tries++) {
      if (tries >= 40) throw new Error('no warm-up message from B reached the tab on A')
      expect((await post(b!.url, `warm-up ${tries}`)).status).toBe(202)
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    expect((await post(b!.url, 'via B')).status).toBe(202)
    await tab.until((e) => chats(e).includes('via B'), 'the message published on B')
    expect((await fetch(`${b!.url}/job`, { method: 'POST' })).status).toBe(202)
    await tab.until(
      (e) => e.some((x) => x.event === 'job' && JSON.parse(x.data).percent === 100),
      'the job run by B',
    )
    const lastSeen = tab.events.filter((e) => e.id !== undefined).at(-1)!.id!
    await tab.stop()

    // The tab comes back on the other process and resumes from the shared history.
    await post(a!.url, 'missed, sent to A')
    const back = follow(`${b!.url}/events`, { lastEventId: lastSeen })
    await back.until((e) => chats(e).length > 0, 'the missed message, on B')
    expect(chats(back.events)).toEqual(['missed, sent to A'])
    expect(back.events.some((e) => e.event === 'oven-reset')).toBe(false)
    await back.stop()
  } finally {
    await stopAllExamples()
    await redis.close()
  }
})
