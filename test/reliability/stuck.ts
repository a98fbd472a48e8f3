/**
 * Clients that stop reading, shared by the fast tier (test/reliability/slow-clients.test.ts)
 * and the stress tier (1 000 clients). Measures what each stuck client costs the server.
 */

import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { getDefaultHighWaterMark } from 'node:stream'
import { expect } from 'vitest'
import { type CloseReason, EventSourceResponse, StreamRegistry } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { BATCH_CHARS } from '../../src/stream/pump.ts'
import { shortDurations } from '../../src/testing.ts'
import { nodeServer, webServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'
import { mb, settledHeap, stuckClient, stuckTcpBytes, untilStalled } from './support.ts'

/** Kernel memory held by TCP sockets, in bytes (from /proc/net/sockstat; 0 where absent). */
export function kernelTcpBytes(): number {
  try {
    const line = readFileSync('/proc/net/sockstat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('TCP:'))
    const pages = Number(/mem (\d+)/.exec(line ?? '')?.[1] ?? 0)
    return pages * 4096
  } catch {
    // Not Linux (no /proc): the figure is reported as 0, and no test asserts on it.
    return 0
  }
}

/** Memory the process holds outside the kernel: JS heap plus Buffers and other external. */
function processBytes(): number {
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.external
}

export interface StuckFigures {
  transport: 'node' | 'web'
  clients: number
  sendTimeout: number
  /** Items (16 KiB events) each source produced, at most, before the pump stopped pulling. */
  maxItemsPerStream: number
  /** Heap + external per stuck client while they were stuck, in KiB. */
  processKibPerClient: number
  /** Kernel TCP memory per stuck client (both ends of the loopback connection), in KiB. */
  kernelKibPerClient: number
  rssPeakMb: number
  rssStartMb: number
  rssEndMb: number
  /** How long it took for every stuck client to be dropped (with sendTimeout), in ms. */
  dropMs: number
  reasons: Record<string, number>
}

const EVENT = 'y'.repeat(16 * 1024)

/**
 * What one stuck client may cost the process, in KiB, by design: the response's writable buffer
 * (its high-water mark, plus the write that crossed it: one batch and the event being encoded)
 * and, on the web path, one batch more in the body stream and one in @hono/node-server's hands;
 * plus the connection's objects (request, response, stream: measured under 40 KiB on the node
 * path and 80 KiB on the web path). A pump that read ahead would pass it within a few events per
 * client; the rest of a stuck client's data sits in the kernel's socket buffers.
 */
export function stuckBudgetKib(transport: 'node' | 'web'): number {
  const buffers =
    getDefaultHighWaterMark(false) +
    BATCH_CHARS +
    EVENT.length +
    (transport === 'web' ? 2 * BATCH_CHARS : 0)
  return (buffers + (transport === 'web' ? 80 : 40) * 1024) / 1024
}

/**
 * The most events one source may produce for a client that reads nothing: what the loopback
 * connection holds (see {@link stuckTcpBytes}; 4.1 MiB here) plus 1 MiB for the buffers in the
 * process (Node's 16 KiB writable buffer, Oven's batch, @hono/node-server's reader), in 16 KiB
 * events: 328 on this machine. Measured: 246 per stream, node and web, 100 stuck clients (the
 * kernel held 3.9 MiB of each), so the slack is a third.
 */
export function eventsPerStuckStream(): number {
  return Math.ceil((stuckTcpBytes() + 2 ** 20) / EVENT.length)
}

/**
 * Opens `clients` connections that never read an endless stream of 16 KiB events.
 * With `sendTimeout` > 0, checks every one is dropped; without, checks the sources stall (the
 * pump does not read ahead of the socket), measures, then disconnects them all.
 */
export async function stuckCheck(
  clients: number,
  sendTimeout: number,
  transport: 'node' | 'web' = 'node',
): Promise<StuckFigures> {
  const registry = new StreamRegistry()
  const produced: number[] = []
  const closes: CloseReason[] = []
  // The gate: endless as far as a working pump can tell, but a source pulled past what the
  // buffers hold ends there (and fails the checks below) instead of filling the memory.
  const perStream = eventsPerStuckStream()
  const source = () => {
    const index = produced.push(0) - 1
    return (function* () {
      for (;;) {
        produced[index] = (produced[index] ?? 0) + 1
        if (produced[index] > perStream) return
        yield EVENT
      }
    })()
  }
  const options = shortDurations({
    registry,
    sendTimeout,
    ping: 1000,
    onClose: (reason: CloseReason) => closes.push(reason),
  })
  const server =
    transport === 'node'
      ? await nodeServer((req, res) => void sendEventStream(req, res, source(), options))
      : await webServer((request) => new EventSourceResponse(source(), { request, ...options }))
  const rssStart = process.memoryUsage().rss
  await settledHeap()
  const before = processBytes()
  const kernelBefore = kernelTcpBytes()
  let rssPeak = rssStart
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
  }, 25)
  const sockets: Socket[] = []
  const opened = Date.now()
  try {
    // Connect in waves, so the accept queue never overflows.
    for (let i = 0; i < clients; i += 50) {
      const wave = Math.min(50, clients - i)
      sockets.push(
        ...(await Promise.all(Array.from({ length: wave }, () => stuckClient(server.port)))),
      )
    }
    let processKib = 0
    let kernelKib = 0
    let dropMs = 0
    if (sendTimeout > 0) {
      await waitFor(`all ${clients} stuck clients dropped`, () => closes.length, {
        until: (n) => n === clients,
        timeout: 60_000,
      })
      dropMs = Date.now() - opened
      expect(closes.filter((r) => r !== 'timeout')).toEqual([])
    } else {
      await waitFor('every stream started', () => produced.length, {
        until: (n) => n === clients,
        timeout: 30_000,
      })
      // The pump stops pulling once the socket stops draining: production stops, and no source
      // gets past what the connection's buffers hold.
      const total = () => produced.reduce((a, b) => a + b, 0)
      await untilStalled("the stuck streams' sources", total, { bound: clients * perStream })
      expect(
        Math.max(...produced),
        'events one source produced for a stuck client',
      ).toBeLessThanOrEqual(perStream)
      await settledHeap()
      const during = processBytes()
      processKib = (during - before) / clients / 1024
      kernelKib = (kernelTcpBytes() - kernelBefore) / clients / 1024
      expect(registry.size).toBe(clients)
      // Nothing was pulled while the heap was measured either.
      expect(Math.max(...produced)).toBeLessThanOrEqual(perStream)
      for (const socket of sockets) socket.destroy()
      await waitFor('all stuck clients disconnected', () => closes.length, {
        until: (n) => n === clients,
        timeout: 30_000,
      })
      expect(closes.filter((r) => r !== 'disconnect')).toEqual([])
    }
    await waitFor('registry empty', () => registry.size, { until: (n) => n === 0 })
    await server.close()
    clearInterval(sampler)
    await settledHeap()
    const reasons: Record<string, number> = {}
    for (const r of closes) reasons[r] = (reasons[r] ?? 0) + 1
    return {
      transport,
      clients,
      sendTimeout,
      maxItemsPerStream: Math.max(...produced),
      processKibPerClient: Math.round(processKib),
      kernelKibPerClient: Math.round(kernelKib),
      rssStartMb: mb(rssStart),
      rssPeakMb: mb(rssPeak),
      rssEndMb: mb(process.memoryUsage().rss),
      dropMs,
      reasons,
    }
  } finally {
    clearInterval(sampler)
    for (const socket of sockets) socket.destroy()
  }
}
