/**
 * Cluster-wide presence: three instances, each its own process, on one redis-server of the
 * test's own. Members converge on every instance; an instance killed with SIGKILL has its
 * members leave within its ttl (announced once); a paused instance's members come back when it
 * resumes; a Redis that restarts empty is filled again by the instances' heartbeats.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import { Presence, type PresenceList } from '../../src/index.ts'
import { RedisPresenceStore } from '../../src/redis.ts'
import { shortDurations } from '../../src/testing.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { type Follower, follow } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'

const fixture = fileURLToPath(new URL('./fixtures/presence-instance.ts', import.meta.url))
/** The instances' ttl: they renew every 500 ms, and sweep as often. */
const TTL = 1500

let redis: RedisServer
let prefixes = 0
const children: ChildProcess[] = []
const followers: Follower[] = []

beforeAll(async () => {
  redis = await startRedis()
})

afterAll(async () => {
  await redis?.close()
})

afterEach(async () => {
  for (const follower of followers.splice(0)) await follower.stop().catch(() => {})
  for (const child of children.splice(0)) {
    child.kill('SIGCONT')
    child.kill('SIGKILL')
  }
})

interface Instance {
  readonly child: ChildProcess
  readonly url: string
}

/** Starts one instance process on the test's Redis under `prefix`. */
async function instance(prefix: string): Promise<Instance> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fixture, redis.url, prefix, String(TTL)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  children.push(child)
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  // Seconds on a busy two-core machine: tsx compiles the fixture first.
  const port = await waitFor(
    'the instance process to listen',
    () => {
      if (child.exitCode !== null)
        throw new Error(`instance exited with ${child.exitCode}:\n${output}`)
      return /listening (\d+)/.exec(output)?.[1]
    },
    { timeout: 40_000 },
  )
  return { child, url: `http://127.0.0.1:${port}` }
}

function join(at: Instance, member: string): Follower {
  const follower = follow(`${at.url}/rooms/lobby?member=${member}`, { timeout: 60_000 })
  followers.push(follower)
  return follower
}

async function members(at: Instance): Promise<string[]> {
  const response = await fetch(`${at.url}/members/lobby`)
  const list = (await response.json()) as PresenceList
  return list.members.map((entry) => entry.member).sort()
}

function presenceLog(follower: Follower): string[] {
  return follower.events
    .filter((event) => event.event === 'presence')
    .map((event) => {
      const { action, member, reason } = JSON.parse(event.data) as Record<string, string>
      return reason ? `${action} ${member} (${reason})` : `${action} ${member}`
    })
}

/** Three instances with ada, bob and carol joined to `lobby` on one each, and two watchers. */
async function cluster() {
  const prefix = `presence${prefixes++}`
  const [a, b, c] = await Promise.all([instance(prefix), instance(prefix), instance(prefix)])
  if (!a || !b || !c) throw new Error('three instances expected')
  // The watchers first, one after the other: a join announced before a watcher subscribed is
  // not its to see.
  const watchA = join(a, 'watcher-a')
  await watchA.until('watcher-a to be live', () => presenceLog(watchA).includes('join watcher-a'))
  const watchB = join(b, 'watcher-b')
  await watchA.until('watcher-a to see watcher-b join', () =>
    presenceLog(watchA).includes('join watcher-b'),
  )
  await watchB.until('watcher-b to be live', () => presenceLog(watchB).includes('join watcher-b'))
  join(a, 'ada')
  join(b, 'bob')
  const carol = join(c, 'carol')
  const everyone = ['ada', 'bob', 'carol', 'watcher-a', 'watcher-b']
  for (const at of [a, b, c]) {
    await waitFor('every member seen from every instance', () => members(at), {
      until: (seen) => seen.join() === everyone.join(),
      timeout: 20_000,
    })
  }
  await watchA.until('watcher-a to see carol join', () =>
    presenceLog(watchA).includes('join carol'),
  )
  return { prefix, a, b, c, watchA, watchB, carol }
}

test('an instance killed with SIGKILL: its member leaves everywhere within the ttl, announced once', async () => {
  const { a, b, c, watchA, watchB, carol } = await cluster()
  c.child.kill('SIGKILL')
  const killedAt = performance.now()
  await carol.stop().catch(() => {})
  const gone = await waitFor(
    'carol to be gone from a',
    async () => (await members(a)).includes('carol'),
    {
      until: (present) => !present,
      timeout: 20_000,
    },
  ).then(() => performance.now() - killedAt)
  await watchA.until(
    'watcher-a to see carol expire',
    () => presenceLog(watchA).includes('leave carol (expired)'),
    20_000,
  )
  const announced = performance.now() - killedAt
  await watchB.until('watcher-b to see carol expire', () =>
    presenceLog(watchB).includes('leave carol (expired)'),
  )
  expect(await members(b)).toEqual(['ada', 'bob', 'watcher-a', 'watcher-b'])
  console.info(
    `[figures] presence ttl ${TTL} ms: carol gone from members() ${Math.round(gone)} ms and her leave announced ${Math.round(announced)} ms after the SIGKILL`,
  )
  // An entry outlives its last renewal by one ttl, and the instances sweep every third of it:
  // at most 2 000 ms after the kill on an idle machine. A loaded one gets slack, not a wider rule.
  expect(gone).toBeLessThan(TTL + TTL / 3 + 5000)
  // Two instances sweep the same entries: exactly one of them removed carol, so one leave.
  await waitFor(
    'a heartbeat after the leave on both instances',
    () => performance.now() - killedAt,
    {
      until: (elapsed) => elapsed > announced + TTL,
      timeout: 20_000,
    },
  )
  for (const watcher of [watchA, watchB]) {
    expect(presenceLog(watcher).filter((line) => line.includes('carol'))).toEqual([
      'join carol',
      'leave carol (expired)',
    ])
  }
})

test('an instance paused past its ttl: its member expires, and joins again when it resumes', async () => {
  const { a, c, watchA } = await cluster()
  c.child.kill('SIGSTOP')
  await watchA.until(
    'carol to expire while her instance is paused',
    () => presenceLog(watchA).includes('leave carol (expired)'),
    20_000,
  )
  c.child.kill('SIGCONT')
  await watchA.until(
    'carol to join again once her instance renews',
    () => presenceLog(watchA).filter((line) => line === 'join carol').length === 2,
    20_000,
  )
  expect(await members(a)).toContain('carol')
})

test('a Redis restarted empty is filled again by the heartbeats of every instance', async () => {
  const { a, b, c } = await cluster()
  await redis.stop()
  await redis.start()
  const restartedAt = performance.now()
  const everyone = ['ada', 'bob', 'carol', 'watcher-a', 'watcher-b']
  for (const at of [a, b, c]) {
    await waitFor('every member back in the restarted Redis', () => members(at).catch(() => []), {
      until: (seen) => seen.join() === everyone.join(),
      timeout: 20_000,
    })
  }
  console.info(
    `[figures] presence ttl ${TTL} ms: every member back ${Math.round(performance.now() - restartedAt)} ms after Redis restarted empty`,
  )
})

test('Redis unreachable: a join rejects with ERR_SSE_BROKER within commandTimeout', async () => {
  const down = await startRedis()
  const url = down.url
  await down.close()
  const errors: unknown[] = []
  const presence = new Presence(
    shortDurations({
      store: new RedisPresenceStore({ url, commandTimeout: 300 }),
      ttl: TTL,
      onError: (error: unknown) => errors.push(error),
    }),
  )
  try {
    const started = performance.now()
    const refused = await presence.join('lobby', 'ada').catch((error: unknown) => error)
    expect(refused).toMatchObject({ code: 'ERR_SSE_BROKER' })
    expect(String((refused as Error).message)).toContain('Redis presence join failed')
    expect(performance.now() - started).toBeLessThan(5000)
    // Not counted: nothing to renew, nothing to leave.
    expect(presence.size).toBe(0)
  } finally {
    await presence.close().catch(() => {})
  }
})
