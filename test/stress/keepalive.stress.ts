/**
 * Keep-alive at scale, stress tier: 2 000 idle streams share one timer (the keep-alive heap).
 * Every client must keep receiving pings, busy streams must not, and streams that end must
 * leave the heap at once, whichever way they end.
 */

import { afterEach, expect, test } from 'vitest'
import { type CloseReason, createChannel, StreamRegistry } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { keepAlive } from '../../src/stream/keepalive.ts'
import { shortDurations } from '../../src/testing.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'
import { type OpenStream, openStream } from '../reliability/support.ts'

afterEach(closeAllServers)

const CLIENTS = 2000
const PING = 100

const pings = (stream: OpenStream) => stream.text().split(': ping - ').length - 1

test('2 000 idle streams all ping on one timer; ended streams leave the heap at once', async () => {
  const registry = new StreamRegistry()
  const closes = new Map<CloseReason, number>()
  const options = shortDurations({
    registry,
    ping: PING,
    onClose: (reason: CloseReason) => closes.set(reason, (closes.get(reason) ?? 0) + 1),
  })
  // Every tenth stream is busy: an event every 20 ms against a 2 s ping (only an event-loop
  // stall of two seconds could let a ping through), which also mixes deadlines in the heap.
  const busyOptions = { ...options, ping: 2000 }
  let busyCount = 0
  const server = await nodeServer((req, res) => {
    if (req.url === '/busy') {
      busyCount++
      void sendEventStream(
        req,
        res,
        async function* ({ signal }) {
          while (!signal.aborted) {
            yield 'tick'
            await new Promise((resolve) => setTimeout(resolve, 20))
          }
        },
        busyOptions,
      )
    } else {
      void sendEventStream(req, res, createChannel(1), options)
    }
  })
  const streams: OpenStream[] = []
  for (let i = 0; i < CLIENTS; i += 100) {
    const batch = Array.from({ length: 100 }, (_, j) =>
      // 30 s for a head, as for every wait here: the streams already open ping 10 times a
      // second each, so on a shared machine a new one can wait well past the default 10 s.
      openStream(`${server.url}/${(i + j) % 10 === 0 ? 'busy' : 'idle'}`, {}, 30_000),
    )
    streams.push(...(await Promise.all(batch)))
  }
  await waitFor('every stream open', () => registry.size, { until: (n) => n === CLIENTS })
  expect(keepAlive.size).toBe(CLIENTS)

  // Counted, not timed: every idle client gets three pings however loaded the machine is.
  const idle = streams.filter((_, i) => i % 10 !== 0)
  const busy = streams.filter((_, i) => i % 10 === 0)
  await waitFor(
    'three pings each (clients with fewer)',
    () => idle.filter((stream) => pings(stream) < 3).length,
    { until: (n) => n === 0, timeout: 30_000 },
  )
  expect(busyCount).toBe(CLIENTS / 10)
  for (const stream of busy) {
    expect(stream.text()).toContain('data: tick')
    expect(pings(stream)).toBe(0)
  }

  // Half the clients vanish: their streams leave the heap, the others keep pinging.
  for (const stream of streams.slice(0, CLIENTS / 2)) stream.destroy()
  await waitFor('disconnects seen', () => registry.size, { until: (n) => n === CLIENTS / 2 })
  expect(keepAlive.size).toBe(CLIENTS / 2)
  const rest = idle.filter((stream) => streams.indexOf(stream) >= CLIENTS / 2)
  const before = rest.map(pings)
  await waitFor(
    'pings go on (clients without a new one)',
    () => rest.filter((stream, i) => pings(stream) <= before[i]!).length,
    { until: (n) => n === 0, timeout: 30_000 },
  )

  // Shutdown ends the rest: nothing is left scheduled, and every stream ended exactly once.
  expect(await registry.closeAll()).toBe(CLIENTS / 2)
  expect(keepAlive.size).toBe(0)
  await Promise.all(streams.slice(CLIENTS / 2).map((stream) => stream.ended))
  expect(Object.fromEntries(closes)).toEqual({ disconnect: CLIENTS / 2, shutdown: CLIENTS / 2 })
}, 120_000)
