/**
 * Shutdown leaves no sticky state: once `closeAll()` has settled, a new server in the same
 * process (the next test, a dev-server reload, a restart in place) streams normally on the
 * default registry, with no `reset()`. What must still be refused is refused: a stream that
 * arrives while `closeAll` runs, and one on a Node server that is being closed.
 */

import { afterEach, expect, test } from 'vitest'
import { type CloseReason, defaultRegistry, StreamRegistry } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { readEvents, shortDurations } from '../../src/testing.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { farewellAfter, gate } from '../helpers/streams.ts'
import { waitFor } from '../helpers/wait.ts'
import { type OpenStream, openStream } from './support.ts'

afterEach(async () => {
  await closeAllServers()
  // A failed test must not leave the next one a registry mid-shutdown.
  defaultRegistry.reset()
})

/** A source that never ends on its own. */
async function* endless({ signal }: { signal: AbortSignal }) {
  yield 'hello'
  await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
}

/** Opens `count` streams in waves of 100; resolves once every one has its head. */
async function openMany(url: string, count: number): Promise<OpenStream[]> {
  const clients: OpenStream[] = []
  for (let i = 0; i < count; i += 100) {
    const wave = Math.min(100, count - i)
    clients.push(...(await Promise.all(Array.from({ length: wave }, () => openStream(url)))))
  }
  return clients
}

test('after closeAll of 3 000 streams, a second server on the default registry streams normally', async () => {
  // The first server: 3 000 streams on the default registry, then a shutdown.
  const firstCloses: CloseReason[] = []
  const first = await nodeServer(
    (req, res) => void sendEventStream(req, res, endless, { onClose: (r) => firstCloses.push(r) }),
  )
  first.server.maxConnections = 3100
  const clients = await openMany(first.url, 3000)
  try {
    await waitFor('3 000 streams registered', () => defaultRegistry.size, {
      until: (size) => size === 3000,
      timeout: 30_000,
    })
    expect(await defaultRegistry.closeAll()).toBe(3000)
    const ends = await Promise.all(clients.map((client) => client.ended))
    expect(ends.filter((how) => how === 'end')).toHaveLength(3000)
    expect(firstCloses.filter((r) => r === 'shutdown')).toHaveLength(3000)
  } finally {
    for (const client of clients) client.destroy()
    await first.close()
  }
  expect(defaultRegistry.closing).toBe(false)

  // The second server, same process, same default registry, no reset().
  const closes = new Map<number, CloseReason[]>()
  let next = 0
  const second = await nodeServer((req, res) => {
    const id = next++
    closes.set(id, [])
    const onClose = (reason: CloseReason) => closes.get(id)!.push(reason)
    if (req.url === '/finite') void sendEventStream(req, res, ['1', '2', '3'], { onClose })
    else void sendEventStream(req, res, endless, { onClose })
  })
  const five = await Promise.all(
    Array.from({ length: 5 }, () => readEvents(`${second.url}/finite`, { timeout: 10_000 })),
  )
  for (const events of five) expect(events.map((e) => e.data)).toEqual(['1', '2', '3'])
  await waitFor('5 finite streams closed', () => closes.size === 5 && next === 5)
  expect([...closes.values()]).toEqual(Array.from({ length: 5 }, () => ['done']))

  // 2 000 connect/abort cycles on it: each stream closes once, as a disconnect.
  closes.clear()
  const before = next
  for (let round = 0; round < 40; round++) {
    const wave = await Promise.all(Array.from({ length: 50 }, () => openStream(second.url)))
    await waitFor(`round ${round}: 50 first events`, () =>
      wave.every((client) => client.text().includes('data: hello')),
    )
    for (const client of wave) client.destroy()
  }
  await waitFor('2 000 streams closed', () => [...closes.values()].filter((r) => r.length > 0), {
    until: (closed) => closed.length === 2000,
    timeout: 30_000,
  })
  expect(next - before).toBe(2000)
  const reasons = [...closes.values()]
  expect(reasons.every((r) => r.length === 1 && r[0] === 'disconnect')).toBe(true)
  expect(defaultRegistry.size).toBe(0)
}, 120_000)

test('a stream that arrives while closeAll runs is refused with "shutdown"; after it, streams start', async () => {
  const registry = new StreamRegistry()
  const farewell = gate()
  const closes: CloseReason[] = []
  const server = await nodeServer((req, res) => {
    const onClose = (reason: CloseReason) => closes.push(reason)
    if (req.url === '/slow-goodbye') {
      // Keeps closeAll running until the test opens the gate.
      void sendEventStream(
        req,
        res,
        farewellAfter(farewell.promise, 'bye'),
        shortDurations({ registry, onClose, shutdownGrace: 60_000 }),
      )
    } else {
      void sendEventStream(req, res, ['late'], { registry, onClose })
    }
  })
  const slow = await openStream(`${server.url}/slow-goodbye`)
  await waitFor('the slow stream open', () => slow.text().includes('data: first'))
  const closing = registry.closeAll()
  expect(registry.closing).toBe(true)

  const late = await openStream(server.url)
  expect(await late.ended).toBe('end')
  expect(late.res.statusCode).toBe(200)
  expect(late.text()).not.toContain('data: late')
  expect(closes).toEqual(['shutdown'])

  farewell.open()
  expect(await closing).toBe(1)
  expect(await slow.ended).toBe('end')
  expect(slow.text()).toContain('data: bye')
  expect(registry.closing).toBe(false)

  const after = await readEvents(server.url, { timeout: 5000 })
  expect(after.map((e) => e.data)).toEqual(['late'])
})

test('await closeAll(); server.close(): a stream begun after the close is refused and does not hold the server open', async () => {
  const registry = new StreamRegistry()
  const authorised = gate()
  const closes: CloseReason[] = []
  let arrived = false
  const server = await nodeServer(async (req, res) => {
    arrived = true
    // The app checks something slow; the server is shut down meanwhile.
    await authorised.promise
    void sendEventStream(req, res, endless, { registry, onClose: (r) => closes.push(r) })
  })
  const late = openStream(server.url)
  await waitFor('the request to reach the handler', () => arrived)
  await registry.closeAll()
  const serverClosed = new Promise<void>((resolve, reject) =>
    server.server.close((error) => (error ? reject(error) : resolve())),
  )
  authorised.open()
  const client = await late
  expect(await client.ended).toBe('end')
  expect(client.text()).not.toContain('data: hello')
  expect(closes).toEqual(['shutdown'])
  // It used to be accepted as a live stream, and server.close() then waited for ever.
  await serverClosed
  expect(registry.size).toBe(0)
})

test('reset() still lets streams start at once, even while a closeAll runs', async () => {
  const registry = new StreamRegistry()
  const farewell = gate()
  const server = await nodeServer((req, res) => {
    if (req.url === '/slow-goodbye') {
      void sendEventStream(
        req,
        res,
        farewellAfter(farewell.promise),
        shortDurations({ registry, shutdownGrace: 60_000 }),
      )
    } else {
      void sendEventStream(req, res, ['started'], { registry })
    }
  })
  const slow = await openStream(`${server.url}/slow-goodbye`)
  await waitFor('the slow stream open', () => slow.text().includes('data: first'))
  const closing = registry.closeAll()
  registry.reset()
  expect(registry.closing).toBe(false)
  const events = await readEvents(server.url, { timeout: 5000 })
  expect(events.map((e) => e.data)).toEqual(['started'])
  farewell.open()
  expect(await closing).toBe(1)
  slow.destroy()
})
