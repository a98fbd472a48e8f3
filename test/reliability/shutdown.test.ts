/**
 * Shutdown under load, fast tier: 1 000 open streams per transport. The 5 000-stream run is
 * test/stress/shutdown.stress.ts (`npm run test:stress`).
 */

import { afterEach, expect, test } from 'vitest'
import { defaultRegistry } from '../../src/index.ts'
import { closeAllServers } from '../helpers/servers.ts'
import { secondServerWorks, shutdownCheck } from './shutdown-load.ts'

afterEach(closeAllServers)

for (const transport of ['node', 'web'] as const) {
  // Without grace every stream ends at once and no source gets to say goodbye; with one, every
  // source says goodbye, and closeAll returns as soon as they all have. The grace is long enough
  // never to fire (measured: closeAll took 0.2–0.6 s with the machine loaded), so the farewell
  // count does not depend on how fast the machine is, and closeAll waiting for the grace's end
  // instead of the sources shows as a closeAll that took the whole 20 s.
  // How fast 1 000 streams end is a figure here (printed); the stress tier
  // (test/stress/shutdown.stress.ts, one file at a time) bounds it, for 5 000.
  for (const grace of [0, 20_000]) {
    test(`${transport}: closeAll (grace ${grace} ms) ends 1 000 streams cleanly; a second server works`, async () => {
      const figures = await shutdownCheck(transport, 1000, grace)
      console.info(JSON.stringify(figures))
      if (grace === 0) {
        expect(figures.farewells).toBe(0)
      } else {
        expect(figures.farewells).toBe(1000)
        expect(figures.closeAllMs).toBeLessThan(grace)
      }
      await secondServerWorks(transport)
    }, 90_000)
  }
}

test('after closeAll has settled, the default registry streams again with no reset(): nothing is sticky', async () => {
  await defaultRegistry.closeAll()
  expect(defaultRegistry.closing).toBe(false)
  await secondServerWorks('node', defaultRegistry)
  await secondServerWorks('web', defaultRegistry)
  // Refusals while closeAll runs, and on a closed server: test/reliability/restart.test.ts.
})
