/**
 * Clients that stop reading, shared by the fast tier (test/reliability/slow-clients.test.ts)
 * and the stress tier (1 000 clients). Measures what each stuck client costs the server.
 */

import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { expect } from 'vitest'
import { type CloseReason, EventSourceResponse, StreamRegistry } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { shortDurations } from '../../src/testing.ts'
import { nodeServer, webServer } from '../helpers/servers.ts'
import { mb, settledHeap, sleep, stuckClient, until } from './support.ts'

/** Kernel memory held by TCP sockets, in bytes (from /proc/net/sockstat; 0 where absent). */
export function kernelTcpBytes(): number {
  try {
    const line = readFileSync('/proc/net/sockstat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('TCP:'))
    const pages = Number(/mem (\d+)/.exec(line ?? '')?.[1] ?? 0)
    return pages * 4096
  } catch {
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
  const source = () => {
    const index = produced.push(0) - 1
    return (function* () {
      for (;;) {
        produced[index] = (produced[index] ?? 0) + 1
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
      await until(() => closes.length === clients, 60_000, `all ${clients} stuck clients dropped`)
      dropMs = Date.now() - opened
      expect(closes.every((r) => r === 'timeout')).toBe(true)
    } else {
      await until(() => produced.length === clients, 30_000, 'every stream started')
      // The pump stops pulling once the socket stops draining: production stalls.
      let total = -1
      await until(
        () => {
          const now = produced.reduce((a, b) => a + b, 0)
          const stalled = now === total
          total = now
          return stalled
        },
        30_000,
        'sources stalled',
      )
      await sleep(300)
      expect(produced.reduce((a, b) => a + b, 0)).toBe(total)
      await settledHeap()
      const during = processBytes()
      processKib = (during - before) / clients / 1024
      kernelKib = (kernelTcpBytes() - kernelBefore) / clients / 1024
      expect(registry.size).toBe(clients)
      for (const socket of sockets) socket.destroy()
      await until(() => closes.length === clients, 30_000, 'all stuck clients disconnected')
      expect(closes.every((r) => r === 'disconnect')).toBe(true)
    }
    await until(() => registry.size === 0, 10_000, 'registry empty')
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
