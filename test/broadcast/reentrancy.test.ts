/**
 * Callbacks that publish while a publish is being delivered: a stream's `onClose` (its client
 * overflowed and was dropped) or a subscriber's `filter`. With the in-memory broker the nested
 * publish is synchronous, so it used to reach the subscribers not yet served *before* the event
 * being delivered, and they dropped that event as already seen. Every subscriber must receive
 * every event, once, in order.
 */

import { afterEach, expect, test } from 'vitest'
import { Broadcaster, EventSourceResponse, type Subscription } from '../../src/index.ts'
import { readEvents } from '../../src/testing.ts'
import { closeAllServers } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'
import { hubServer, takeHubServerErrors } from './hub-server.ts'

const hubs: Broadcaster[] = []
afterEach(async () => {
  await Promise.all(hubs.splice(0).map((hub) => hub.close()))
  await closeAllServers()
  expect(takeHubServerErrors()).toEqual([])
})

/** A stream of `subscription` whose client reads the first chunk, then never again. */
async function stalledStream(subscription: Subscription, onClose: () => void) {
  const response = new EventSourceResponse(subscription, { ping: false, onClose })
  const reader = response.body!.getReader()
  await reader.read()
  return reader
}

test("a dropped subscriber's onClose that publishes: the others still get every event, in order", async () => {
  const hub = new Broadcaster({ queue: 2, overflow: 'disconnect' })
  hubs.push(hub)
  const server = await hubServer(hub)
  // Subscribed first, so it is served first: the others are not yet served when it overflows.
  const slow = hub.subscribe('room')
  await slow.ready
  await hub.publish('room', 'hello')
  let presencePublished: Promise<string> | undefined
  const reader = await stalledStream(slow, () => {
    presencePublished = hub.publish('room', { event: 'presence', data: 'slow left' })
  })
  const TOTAL = 30
  const readers = [1, 2].map(() => readEvents(server.stream('room'), { count: TOTAL + 1 }))
  await server.live(2)
  for (let i = 0; i < TOTAL; i++) await hub.publish('room', `event ${i}`)
  const received = await Promise.all(readers)
  const presenceId = await await waitFor("the dropped stream's onClose", () => presencePublished)
  for (const events of received) {
    // Positions (`<epoch>-<seq>`) strictly increase: in order, none twice.
    const seqs = events.map((event) => Number(String(event.id).split('-')[1]))
    expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b))
    expect(events.filter((event) => event.event !== 'presence').map((event) => event.data)).toEqual(
      Array.from({ length: TOTAL }, (_, i) => `event ${i}`),
    )
    expect(events.filter((event) => event.event === 'presence')).toEqual([
      expect.objectContaining({ id: presenceId, data: 'slow left' }),
    ])
  }
  expect(hub.stats()).toMatchObject({ disconnected: 1, resets: 0 })
  // The stalled client was cut off without a clean end: it reconnects and resumes.
  await expect(reader.read()).rejects.toThrow(/dropped without a clean end/)
})

test('a filter that publishes: its event is delivered after the one being filtered, to everyone', async () => {
  const hub = new Broadcaster()
  hubs.push(hub)
  const server = await hubServer(hub)
  // First in the topic's set: it sees each event before the sockets' subscribers do.
  const echoing = hub.subscribe('feed', {
    filter: (event) => {
      if (event.event !== 'echo') void hub.publish('feed', { event: 'echo', data: event.data })
      return true
    },
  })
  await echoing.ready
  const readers = [1, 2].map(() => readEvents(server.stream('feed'), { count: 6 }))
  await server.live(2)
  for (let i = 0; i < 3; i++) await hub.publish('feed', `event ${i}`)
  for (const events of await Promise.all(readers)) {
    expect(events.map((event) => `${event.event ?? 'message'}:${event.data}`)).toEqual([
      'message:event 0',
      'echo:event 0',
      'message:event 1',
      'echo:event 1',
      'message:event 2',
      'echo:event 2',
    ])
  }
  echoing.close()
})

test('an async filter is refused: the stream ends through onError instead of leaking every event', async () => {
  const hub = new Broadcaster()
  hubs.push(hub)
  const errors: unknown[] = []
  const subscription = hub.subscribe('private', {
    filter: (async () => false) as never,
  })
  await subscription.ready
  const response = new EventSourceResponse(subscription, {
    ping: false,
    onError: (error) => errors.push(error),
  })
  const text = response.text()
  await hub.publish('private', 'secret')
  expect(await text).toBe(': ok\r\n\r\n')
  expect(errors).toEqual([
    expect.objectContaining({
      code: 'ERR_SSE_INVALID_OPTION',
      message: expect.stringMatching(/filter.*cannot be async/),
    }),
  ])
})
