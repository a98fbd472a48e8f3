/**
 * The leak check shared by the fast tier (1 000 cycles) and the stress tier (10 000): run the
 * cycles, then prove every stream closed exactly once, every slot and registry entry was given
 * back, the heap came back to where it was, no handle stayed open and no listener warning fired.
 */

import { expect, vi } from 'vitest'
import { waitFor } from '../helpers/wait.ts'
import { cycleServer, runCycles } from './cycles.ts'
import { mb, openHandles, settledHeap } from './support.ts'

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
    const { server, registry, limiter, closes, errors, late } = await cycleServer(transport)
    const settle = async () => {
      await waitFor('all streams closed', () => ({ streams: registry.size, slots: limiter.size }), {
        until: (open) => open.streams === 0 && open.slots === 0,
        timeout: 20_000,
      })
      await waitFor(
        'every started stream reported its close',
        () => [...closes].filter(([, list]) => list.length === 0).map(([n]) => n),
        { until: (unclosed) => unclosed.length === 0, timeout: 20_000 },
      )
      // Idle keep-alive sockets close after the server's 100 ms keepAliveTimeout: the heap is
      // compared with none open, before and after.
      await waitFor('no connection left open', connections, {
        until: (n) => n === 0,
        timeout: 20_000,
      })
    }
    const connections = () =>
      new Promise<number>((resolve, reject) =>
        server.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
      )
    // Warm up: JIT, pools and lazily built internals settle before the baseline.
    await runCycles(server, 300, { seed: options.seed + 1, concurrency: options.concurrency })
    await settle()
    closes.clear()
    errors.length = 0
    const heapBefore = await settledHeap()
    const started = Date.now()
    const run = await runCycles(server, cycles, {
      seed: options.seed,
      concurrency: options.concurrency,
      firstId: 1_000_000,
    })
    await settle()
    const seconds = (Date.now() - started) / 1000
    const reasons: Record<string, number> = {}
    for (const [n, list] of closes) {
      expect(list, `onClose calls of stream ${n}`).toHaveLength(1)
      const reason = list[0] as string
      reasons[reason] = (reasons[reason] ?? 0) + 1
    }
    // Every client that saw a response head was served by a stream that closed.
    const lost = run.heads.filter((n) => !closes.has(n))
    expect(lost, 'cycles with a response head but no stream').toEqual([])
    expect(run.heads).toHaveLength(run.waitedForHead)
    // The only errors are the ones the 'error' moment raises on purpose.
    const unexpectedErrors = errors.filter(
      (error) => !(error instanceof Error && error.message === 'source failed on purpose'),
    )
    expect(unexpectedErrors).toEqual([])
    expect(errors.length).toBeLessThanOrEqual(run.tally.error)
    const streams = closes.size
    // Cleared, so the test's own records do not count as heap; an onClose from now on is
    // recorded in `late`.
    closes.clear()
    errors.length = 0
    const heapAfter = await settledHeap()
    // The bound guards against a leak per stream: a few hundred bytes kept per cycle would
    // already pass it. Measured 0.2–1.1 MB (1 000 cycles, loaded machine); the slack is 4 MB.
    expect(mb(heapAfter - heapBefore)).toBeLessThan(options.heapSlackMb)
    await server.close()
    await waitFor('open handles back to where they were', openHandles, {
      until: (now) => now.length <= handlesBefore.length,
      timeout: 5000,
    })
    // No socket or timer is left that could call an onClose: none came twice.
    expect(late, 'onClose calls after the stream had closed').toEqual([])
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
