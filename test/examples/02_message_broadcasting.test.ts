import { EventSource } from 'eventsource'
import { afterEach, expect, test, vi } from 'vitest'
import { iterateEvents, type SseEvent } from '../../src/testing.ts'
import { waitFor } from '../helpers/wait.ts'
import { EXAMPLE_TEST_TIMEOUT, runExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)
vi.setConfig({ testTimeout: EXAMPLE_TEST_TIMEOUT })

async function post(url: string, body: unknown) {
  const response = await fetch(`${url}/send`, { method: 'POST', body: JSON.stringify(body) })
  return {
    status: response.status,
    body: (await response.json()) as { id: string; subscribers: number },
  }
}

/** Waits until the example's `/status` satisfies `until`; the error shows the last status. */
function statusUntil(url: string, what: string, until: (status: Status) => boolean) {
  return waitFor(what, () => status(url), { until })
}

interface Status {
  subscribers: number
  rooms: Record<string, number>
}

async function status(url: string): Promise<Status> {
  const response = await fetch(`${url}/status`)
  if (response.status !== 200) throw new Error(`/status answered ${response.status}`)
  return (await response.json()) as Status
}

const messages = (events: SseEvent[]) =>
  events.filter((e) => e.event === 'message').map((e) => JSON.parse(e.data).text as string)

test('02_message_broadcasting: every subscriber gets each message; presence follows disconnects', async () => {
  const example = await runExample('02_message_broadcasting.ts')
  const { url } = example

  // Two real EventSource clients in the same room, one in another room.
  const received: Record<string, string[]> = { a: [], b: [], other: [] }
  const errors: string[] = []
  const sources = [
    ['a', 'general'],
    ['b', 'general'],
    ['other', 'random'],
  ].map(([name, room]) => {
    const source = new EventSource(`${url}/events?room=${room}`)
    source.addEventListener('message', (event) =>
      received[name!]!.push(JSON.parse(event.data).text),
    )
    // An EventSource reconnects after an error instead of failing: record it, asserted below.
    source.addEventListener('error', (event) => errors.push(`${name}: ${event.message}`))
    return source
  })
  try {
    await statusUntil(url, '3 subscribers', (s) => s.subscribers === 3)
    expect((await status(url)).rooms).toEqual({ general: 2, random: 1 })

    const sent = await post(url, { user: 'ada', text: 'hello, general' })
    expect(sent).toMatchObject({ status: 202, body: { subscribers: 2 } })
    await post(url, { user: 'bob', text: 'hi, random', room: 'random' })
    await waitFor('one message for each client', () => received, {
      until: ({ a, b, other }) => a!.length === 1 && b!.length === 1 && other!.length === 1,
    })
    expect(received).toEqual({
      a: ['hello, general'],
      b: ['hello, general'],
      other: ['hi, random'],
    })

    sources[1]!.close()
    await statusUntil(url, 'presence to drop to 1', (s) => s.rooms.general === 1)
    expect((await post(url, { text: 'no user' })).status).toBe(400)
    expect(errors).toEqual([])
  } finally {
    for (const source of sources) source.close()
  }
  await statusUntil(url, 'every subscription to end', (s) => s.subscribers === 0)
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
  await statusUntil(url, 'the subscriber', (s) => s.subscribers === 1)
  const one = await post(url, { user: 'ada', text: 'one' })
  const two = await post(url, { user: 'ada', text: 'two' })
  await reading
  // The ids the client saw are the ones the server gave the messages it published.
  const ids = first.filter((e) => e.event === 'message').map((e) => e.id)
  expect(ids).toEqual([one.body.id, two.body.id])
  const lastSeen = two.body.id
  await statusUntil(url, 'the disconnect', (s) => s.subscribers === 0)

  // Sent while nobody was connected.
  expect((await post(url, { user: 'ada', text: 'three' })).status).toBe(202)
  expect((await post(url, { user: 'ada', text: 'four' })).status).toBe(202)

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
  await statusUntil(url, 'the fresh subscriber', (s) => s.subscribers === 1)
  await post(url, { user: 'ada', text: 'five' })
  await freshReading
  expect(messages(fresh)).toEqual(['five'])
})
