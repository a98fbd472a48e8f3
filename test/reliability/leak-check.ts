/**
 * The leak check shared by the fast tier (1 000 cycles) and the stress tier (10 000): run the
 * cycles, then prove every stream closed exactly once, every slot and registry entry was given
 * back, the heap came back to where it was, no handle stayed open and no listener warning fired.
 */

import { expect, vi } from 'vitest'
import { cycleServer, runCycles } from './cycles.ts'
import { mb, openHandles, settledHeap, sleep, until } from './support.ts'

/** What a leak check measured, for the report and docs/production.md. */
export interface LeakFigures {
  transport: 'node' | 'web'
  cycles: number
  streams: number
  seconds: number
  heapBeforeMb: number
  heapAfterMb: number
  heapDeltaMb: number
  reasons: Record<string, number>
}

export async function leakCheck(
  transport: 'node' | 'web',
  cycles: number,
  options: { seed: number; concurrency: number; heapSlackMb: number },
): Promise<LeakFigures> {
  const warnings: string[] = []
  const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`)
  process.on('warning', onWarning)
  // Every stream has its own onError, so nothing may be logged — except that @hono/node-server
  // logs each response body Oven errors to drop a stuck client (reason `timeout`).
  const logged: unknown[] = []
  const consoleError = vi.spyOn(console, 'error').mockImplementation((...args) => {
    logged.push(args[0])
  })
  const handlesBefore = openHandles()
  try {
    const { server, registry, limiter, closes, counters } = await cycleServer(transport)
    const settle = async () => {
      await until(() => registry.size === 0 && limiter.size === 0, 20_000, 'all streams closed')
      await until(
        () => [...closes.values()].every((list) => list.length >= 1),
        20_000,
        'every started stream reported its close',
      )
    }
    // Warm up: JIT, pools and lazily built internals settle before the baseline.
    await runCycles(server, 300, { seed: options.seed + 1, concurrency: options.concurrency })
    await settle()
    closes.clear()
    const heapBefore = await settledHeap()
    const started = Date.now()
    await runCycles(server, cycles, {
      seed: options.seed,
      concurrency: options.concurrency,
      firstId: 1_000_000,
    })
    await settle()
    const seconds = (Date.now() - started) / 1000
    // A late second onClose would show up here.
    await sleep(200)
    const reasons: Record<string, number> = {}
    for (const [n, list] of closes) {
      expect(list, `onClose calls of stream ${n}`).toHaveLength(1)
      const reason = list[0] as string
      reasons[reason] = (reasons[reason] ?? 0) + 1
    }
    const streams = closes.size
    closes.clear()
    const heapAfter = await settledHeap()
    expect(counters.started).toBeGreaterThan(300)
    expect(mb(heapAfter - heapBefore)).toBeLessThan(options.heapSlackMb)
    await server.close()
    await until(
      () => openHandles().length <= handlesBefore.length,
      5000,
      `open handles back to ${handlesBefore.join(',')} (now ${openHandles().join(',')})`,
    )
    expect(warnings.filter((w) => w.includes('MaxListeners'))).toEqual([])
    const unexpected = logged.filter(
      (entry) => !(transport === 'web' && String(entry).includes('oven-sse: stream dropped')),
    )
    expect(unexpected).toEqual([])
    if (transport === 'node') expect(logged).toEqual([])
    return {
      transport,
      cycles,
      streams,
      seconds,
      heapBeforeMb: mb(heapBefore),
      heapAfterMb: mb(heapAfter),
      heapDeltaMb: mb(heapAfter - heapBefore),
      reasons,
    }
  } finally {
    process.off('warning', onWarning)
    consoleError.mockRestore()
  }
}
