import { EventSource } from 'eventsource'
import { afterEach, expect, test } from 'vitest'
import { iterateEvents, type SseEvent } from '../../src/testing.ts'
import { runExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)

async function post(url: string, body: unknown) {
  const response = await fetch(`${url}/send`, { method: 'POST', body: JSON.stringify(body) })
  return {
    status: response.status,
    body: (await response.json()) as { id: string; subscribers: number },
  }
}

async function status(url: string) {
  return (await (await fetch(`${url}/status`)).json()) as {
    subscribers: number
    rooms: Record<string, number>
  }
}

async function until(predicate: () => boolean | Promise<boolean>, what: string, timeout = 5000) {
  const start = Date.now()
  while (!(await predicate())) {
    if (Date.now() - start > timeout) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const messages = (events: SseEvent[]) =>
  events.filter((e) => e.event === 'message').map((e) => JSON.parse(e.data).text as string)

test('02_message_broadcasting: every subscriber gets each message; presence follows disconnects', async () => {
  const example = await runExample('02_message_broadcasting.ts')
  const { url } = example

  // Two real EventSource clients in the same room, one in another room.
  const received: Record<string, string[]> = { a: [], b: [], other: [] }
  const sources = [
    ['a', 'general'],
    ['b', 'general'],
    ['other', 'random'],
  ].map(([name, room]) => {
    const source = new EventSource(`${url}/events?room=${room}`)
    source.addEventListener('message', (event) =>
      received[name!]!.push(JSON.parse(event.data).text),
    )
    return source
  })
  try {
    await until(async () => (await status(url)).subscribers === 3, '3 subscribers')
    expect((await status(url)).rooms).toEqual({ general: 2, random: 1 })

    const sent = await post(url, { user: 'ada', text: 'hello, general' })
    expect(sent).toMatchObject({ status: 202, body: { subscribers: 2 } })
    await post(url, { user: 'bob', text: 'hi, random', room: 'random' })
    await until(
      () => received.a!.length === 1 && received.b!.length === 1 && received.other!.length === 1,
      'delivery',
    )
    expect(received).toEqual({
      a: ['hello, general'],
      b: ['hello, general'],
      other: ['hi, random'],
    })

    sources[1]!.close()
    await until(async () => (await status(url)).rooms.general === 1, 'presence to drop to 1')
    expect((await post(url, { text: 'no user' })).status).toBe(400)
  } finally {
    for (const source of sources) source.close()
  }
  await until(async () => (await status(url)).subscribers === 0, 'every subscription to end')
})

test('02_message_broadcasting: a client that reconnects with Last-Event-ID misses nothing', async () => {
  const example = await runExample('02_message_broadcasting.ts')
  const { url } = example

  const first: SseEvent[] = []
  const stop = new AbortController()
  const reading = (async () => {
    for await (const event of iterateEvents(`${url}/events`, {
      signal: stop.signal,
      timeout: 10_000,
    })) {
      first.push(event)
      if (messages(first).length === 2) break
    }
  })()
  await until(async () => (await status(url)).subscribers === 1, 'the subscriber')
  await post(url, { user: 'ada', text: 'one' })
  await post(url, { user: 'ada', text: 'two' })
  await reading
  const lastSeen = first.filter((e) => e.event === 'message').at(-1)!.id!
  expect(lastSeen).toBeTruthy()
  await until(async () => (await status(url)).subscribers === 0, 'the disconnect')

  // Sent while nobody was connected.
  await post(url, { user: 'ada', text: 'three' })
  await post(url, { user: 'ada', text: 'four' })

  const resumed: SseEvent[] = []
  for await (const event of iterateEvents(`${url}/events`, {
    lastEventId: lastSeen,
    timeout: 10_000,
  })) {
    resumed.push(event)
    if (messages(resumed).length === 2) break
  }
  expect(messages(resumed)).toEqual(['three', 'four'])
  // Without an id, a new client starts from now: no history is replayed.
  const fresh: SseEvent[] = []
  const freshReading = (async () => {
    for await (const event of iterateEvents(`${url}/events`, { timeout: 10_000 })) {
      fresh.push(event)
      if (messages(fresh).length === 1) break
    }
  })()
  await until(async () => (await status(url)).subscribers === 1, 'the fresh subscriber')
  await post(url, { user: 'ada', text: 'five' })
  await freshReading
  expect(messages(fresh)).toEqual(['five'])
})
