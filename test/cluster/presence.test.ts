/**
 * Presence in one process (`MemoryPresenceStore`), over real sockets: members and their
 * connections, join and leave events for subscribers that opt in, expiry of entries nobody
 * renews, and bad input.
 */

import { afterEach, expect, test } from 'vitest'
import {
  Broadcaster,
  MemoryPresenceStore,
  Presence,
  type PresenceList,
  type SseError,
} from '../../src/index.ts'
import { shortDurations } from '../../src/testing.ts'
import { closeAllServers } from '../helpers/servers.ts'
import { follow } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'
import { presenceServer } from './presence-server.ts'

const TTL = 600
const closing: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const close of closing.splice(0)) await close()
  await closeAllServers()
})

function setup(options: { store?: MemoryPresenceStore; maxConnections?: number } = {}) {
  const errors: unknown[] = []
  const hub = new Broadcaster()
  const presence = new Presence(
    shortDurations({
      store: options.store ?? new MemoryPresenceStore(),
      broadcaster: hub,
      ttl: TTL,
      maxConnections: options.maxConnections,
      onError: (error: unknown) => errors.push(error),
    }),
  )
  closing.push(async () => {
    await presence.close()
    await hub.close()
    expect(errors).toEqual([])
  })
  return { hub, presence, errors }
}

async function members(base: string, room: string): Promise<PresenceList> {
  const response = await fetch(`${base}/members/${room}`)
  expect(response.status).toBe(200)
  return (await response.json()) as PresenceList
}

/** The presence events a follower received, as `action member (reason)`. */
function presenceLog(
  events: ReadonlyArray<{ event?: string | undefined; data: string }>,
): string[] {
  return events
    .filter((event) => event.event === 'presence')
    .map((event) => {
      const { action, member, reason } = JSON.parse(event.data) as Record<string, string>
      return reason ? `${action} ${member} (${reason})` : `${action} ${member}`
    })
}

test('a member joins with its first connection and leaves with its last; members() counts both', async () => {
  const { hub, presence } = setup()
  const server = await presenceServer(hub, presence)
  const watcher = follow(`${server.url}/rooms/lobby?member=watcher`)
  await watcher.until('the watcher to see itself join', (events) =>
    presenceLog(events).includes('join watcher'),
  )

  const tab1 = follow(`${server.url}/rooms/lobby?member=ada&name=Ada`)
  await watcher.until('ada to join', (events) => presenceLog(events).includes('join ada'))
  const tab2 = follow(`${server.url}/rooms/lobby?member=ada&name=Ada`)
  await waitFor('ada to hold two connections', async () => {
    const list = await members(server.url, 'lobby')
    return list.members.find((entry) => entry.member === 'ada')?.connections === 2
  })
  const list = await members(server.url, 'lobby')
  expect(list.total).toBe(2)
  expect(list.members).toContainEqual({ member: 'ada', connections: 2, info: { name: 'Ada' } })
  expect(list.members).toContainEqual({ member: 'watcher', connections: 1 })

  await tab1.stop()
  await waitFor('ada to hold one connection', async () => {
    const now = await members(server.url, 'lobby')
    return now.members.find((entry) => entry.member === 'ada')?.connections === 1
  })
  await tab2.stop()
  await watcher.until('ada to leave', (events) => presenceLog(events).includes('leave ada (left)'))
  // One join and one leave for two connections: the second tab announced nothing.
  expect(presenceLog(watcher.events)).toEqual(['join watcher', 'join ada', 'leave ada (left)'])
  expect(await members(server.url, 'lobby')).toEqual({
    total: 1,
    members: [{ member: 'watcher', connections: 1 }],
  })
  await watcher.stop()
  await waitFor(
    'the room to be empty',
    async () => (await members(server.url, 'lobby')).total === 0,
  )
  expect(presence.size).toBe(0)
})

test('an entry nobody renews (its instance died) expires: the sweep announces the leave once', async () => {
  const store = new MemoryPresenceStore()
  const { hub, presence } = setup({ store })
  const server = await presenceServer(hub, presence)
  const watcher = follow(`${server.url}/rooms/lobby?member=watcher`)
  await watcher.until('the watcher to join', (events) => presenceLog(events).length === 1)
  // What a dead instance leaves behind: an entry in the shared store that no Presence renews.
  const started = Date.now()
  expect(await store.join('lobby', 'dead-instance:1', 'ghost', undefined, TTL)).toBe(true)
  expect((await members(server.url, 'lobby')).total).toBe(2)
  await watcher.until(
    'the ghost to expire',
    (events) => presenceLog(events).includes('leave ghost (expired)'),
    TTL * 10,
  )
  // Not before its ttl, and within a ttl and a heartbeat or so after.
  expect(Date.now() - started).toBeGreaterThanOrEqual(TTL)
  expect(await members(server.url, 'lobby')).toEqual({
    total: 1,
    members: [{ member: 'watcher', connections: 1 }],
  })
  // The watcher's own entry is renewed all along: still there after several ttls.
  expect(presenceLog(watcher.events)).toEqual(['join watcher', 'leave ghost (expired)'])
  await watcher.stop()
})

test('an entry swept while its instance could not renew it is joined again', async () => {
  const store = new MemoryPresenceStore()
  const { presence } = setup({ store })
  await presence.join('lobby', 'ada')
  // As if Redis had restarted empty, or this process had been paused past the ttl.
  await store.close()
  expect((await store.members('lobby', 10)).total).toBe(0)
  await waitFor('ada to be present again', async () => (await presence.members('lobby')).total, {
    timeout: TTL * 10,
  })
  expect((await presence.members('lobby')).members).toEqual([{ member: 'ada', connections: 1 }])
})

test('leave() and an aborted signal each leave once; a signal aborted before the join leaves at once', async () => {
  const { presence } = setup()
  const controller = new AbortController()
  const leave = await presence.join('r', 'ada', { signal: controller.signal })
  await presence.join('r', 'ada')
  expect((await presence.members('r')).members).toEqual([{ member: 'ada', connections: 2 }])
  controller.abort()
  await leave()
  await leave()
  expect((await presence.members('r')).members).toEqual([{ member: 'ada', connections: 1 }])
  const gone = AbortSignal.abort()
  await presence.join('r', 'bob', { signal: gone })
  expect((await presence.members('r')).members).toEqual([{ member: 'ada', connections: 1 }])
  expect(presence.size).toBe(1)
})

test('close() waits for leaves under way, so their announcements go out before the broadcaster closes', async () => {
  const errors: unknown[] = []
  const hub = new Broadcaster()
  const presence = new Presence(
    shortDurations({
      store: new MemoryPresenceStore(),
      broadcaster: hub,
      ttl: TTL,
      onError: (error: unknown) => errors.push(error),
    }),
  )
  const watcher = hub.subscribe(presence.eventsTopic('r'))
  await watcher.ready
  const controller = new AbortController()
  await presence.join('r', 'ada', { signal: controller.signal })
  // What a shutdown does: the streams end (their signals abort), then everything closes.
  controller.abort()
  await presence.close()
  await hub.close()
  expect(errors).toEqual([])
  const announced: string[] = []
  for await (const event of watcher) announced.push(String(event.data))
  expect(announced.map((data) => JSON.parse(data).action)).toEqual(['join', 'leave'])
})

test('a flood of joins past maxConnections is refused with ERR_SSE_PRESENCE_FULL; a leave frees a place', async () => {
  const { presence } = setup({ maxConnections: 3 })
  const leaves = await Promise.all(['a', 'b', 'c'].map((member) => presence.join('r', member)))
  const refused = await presence.join('r', 'd').catch((error: SseError) => error)
  expect(refused).toMatchObject({ code: 'ERR_SSE_PRESENCE_FULL' })
  expect((refused as SseError).message).toContain('maxConnections')
  await leaves[0]?.()
  await presence.join('r', 'd')
  expect((await presence.members('r')).total).toBe(3)
})

test('members() lists at most maxMembers, with the exact total', async () => {
  const hub = new Broadcaster()
  const presence = new Presence(
    shortDurations({ store: new MemoryPresenceStore(), ttl: TTL, maxMembers: 5 }),
  )
  closing.push(async () => {
    await presence.close()
    await hub.close()
  })
  for (let i = 0; i < 20; i++) await presence.join('big', `member-${i}`)
  const list = await presence.members('big')
  expect(list.total).toBe(20)
  expect(list.members).toHaveLength(5)
})

test('bad input is refused with errors that name the option, what was expected and what came', async () => {
  const store = new MemoryPresenceStore()
  const make = (options: object) => () => new Presence({ store, ...options } as never)
  expect(make({ ttl: 10 })).toThrow(/"ttl"/)
  expect(make({ ttl: 'soon' })).toThrow(/"ttl".*received string "soon"/)
  expect(make({ maxMembers: 0 })).toThrow(
    /"maxMembers": expected a positive integer, received number 0/,
  )
  expect(make({ maxConnections: 1.5 })).toThrow(/"maxConnections"/)
  expect(make({ eventsTopic: 'presence' })).toThrow(/"eventsTopic": expected a function/)
  expect(make({ broadcaster: {} })).toThrow(/"broadcaster": expected a Broadcaster/)
  expect(make({ ttll: 1000 })).toThrow(/Unknown option "ttll" for Presence/)
  expect(() => new Presence({ store: {} } as never)).toThrow(/"store": expected a PresenceStore/)

  const presence = new Presence({ store })
  closing.push(() => presence.close())
  await expect(presence.join('', 'ada')).rejects.toThrow(
    /topic must be a non-empty string.*received string ""/,
  )
  await expect(presence.join('r', 42 as never)).rejects.toThrow(
    /member must be.*received number 42/,
  )
  await expect(presence.join('r', 'x'.repeat(1025))).rejects.toThrow(/member must be.*1024/)
  const circular: Record<string, unknown> = {}
  circular.self = circular
  await expect(presence.join('r', 'ada', { info: circular })).rejects.toThrow(
    /info cannot be turned into JSON/,
  )
  await expect(presence.join('r', 'ada', { info: 'x'.repeat(5000) })).rejects.toThrow(
    /info must be JSON of at most 4096 characters, received 5002 characters/,
  )
  await expect(presence.join('r', 'ada', { info: () => 1 })).rejects.toThrow(
    /info must be JSON.*a function/,
  )
  await expect(presence.join('r', 'ada', { sginal: 1 } as never)).rejects.toThrow(
    /Unknown option "sginal"/,
  )
  // Nothing was joined by the refused calls.
  expect(presence.size).toBe(0)
  await presence.close()
  await expect(presence.join('r', 'ada')).rejects.toMatchObject({ code: 'ERR_SSE_BROKER' })
})
