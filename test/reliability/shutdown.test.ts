/**
 * Shutdown under load, fast tier: 1 000 open streams per transport. The 5 000-stream run is
 * test/stress/shutdown.stress.ts (`npm run test:stress`).
 */

import { afterEach, expect, test } from 'vitest'
import { defaultRegistry, EventSourceResponse } from '../../src/index.ts'
import { closeAllServers } from '../helpers/servers.ts'
import { secondServerWorks, shutdownCheck } from './shutdown-load.ts'

afterEach(closeAllServers)

// This tier runs beside other test files, on a machine that may be busy: its time bounds scale
// with how long opening the same 1 000 streams took (2 s at least). The stress tier
// (test/stress/shutdown.stress.ts, one file at a time) keeps the absolute bound.
for (const transport of ['node', 'web'] as const) {
  // A grace long enough for 1 000 farewells on a crowded machine: what is tested is that every
  // source gets to say goodbye, and that closeAll returns once they have, not at the grace's end.
  for (const grace of [0, 5000]) {
    test(`${transport}: closeAll (grace ${grace} ms) ends 1 000 streams cleanly; a second server works`, async () => {
      const figures = await shutdownCheck(transport, 1000, grace)
      console.info(JSON.stringify(figures))
      // Ending the streams takes no longer than opening them did.
      const allowance = Math.max(2000, figures.openMs)
      if (grace === 0) {
        expect(figures.lastClientEndMs).toBeLessThan(allowance)
      } else {
        expect(figures.farewells).toBe(1000)
        expect(figures.closeAllMs).toBeLessThan(grace)
        expect(figures.lastClientEndMs).toBeLessThan(figures.closeAllMs + allowance)
      }
      await secondServerWorks(transport)
    }, 60_000)
  }
}

test('the default registry refuses new streams after closeAll until reset(): nothing else is sticky', async () => {
  await defaultRegistry.closeAll()
  const refused = new EventSourceResponse(['a'])
  const reader = refused.body!.getReader()
  await reader.read()
  expect(await refused.closed).toBe('shutdown')
  defaultRegistry.reset()
  await secondServerWorks('node', defaultRegistry)
  await secondServerWorks('web', defaultRegistry)
})
