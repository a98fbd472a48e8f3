/**
 * Leaks, fast tier: 1 000 connect/disconnect cycles per transport with clients leaving at random
 * moments. The 10 000-cycle run is test/stress/leaks.stress.ts (`npm run test:stress`).
 */

import { afterEach, test } from 'vitest'
import { closeAllServers } from '../helpers/servers.ts'
import { leakCheck } from './leak-check.ts'

afterEach(closeAllServers)

const SEED = 20261124

for (const transport of ['node', 'web'] as const) {
  test(`${transport}: 1 000 random disconnects leak no heap, handle, listener or onClose`, async () => {
    const figures = await leakCheck(transport, 1000, {
      seed: SEED,
      concurrency: 24,
      heapSlackMb: 4,
    })
    console.info(JSON.stringify(figures))
  }, 120_000)
}
