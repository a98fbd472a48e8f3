/**
 * Leaks, stress tier: 10 000 connect/disconnect cycles per transport, clients leaving at random
 * moments (before the head, mid-event, during a ping, during sendTimeout, ...). Afterwards the
 * heap is within a few MB of the start, no handle is open, no MaxListenersExceededWarning was
 * emitted and every stream's onClose ran exactly once.
 */

import { afterEach, test } from 'vitest'
import { closeAllServers } from '../helpers/servers.ts'
import { leakCheck } from '../reliability/leak-check.ts'

afterEach(closeAllServers)

const SEED = Number(process.env.OVEN_STRESS_SEED ?? 20261124)

for (const transport of ['node', 'web'] as const) {
  test(`${transport}: 10 000 random disconnects leak nothing (seed ${SEED})`, async () => {
    const figures = await leakCheck(transport, 10_000, {
      seed: SEED,
      concurrency: 32,
      heapSlackMb: 4,
    })
    console.info(JSON.stringify(figures))
  })
}
