/**
 * Shutdown under load, fast tier: 1 000 open streams per transport. The 5 000-stream run is
 * test/stress/shutdown.stress.ts (`npm run test:stress`).
 */

import { afterEach, expect, test } from 'vitest'
import { defaultRegistry, EventSourceResponse } from '../../src/index.ts'
import { closeAllServers } from '../helpers/servers.ts'
import { secondServerWorks, shutdownCheck } from './shutdown-load.ts'

afterEach(closeAllServers)

for (const transport of ['node', 'web'] as const) {
  for (const grace of [0, 300]) {
    test(`${transport}: closeAll (grace ${grace} ms) ends 1 000 streams cleanly; a second server works`, async () => {
      const figures = await shutdownCheck(transport, 1000, grace)
      console.info(JSON.stringify(figures))
      // Generous against a loaded 2-core machine; the figures are in the report.
      expect(figures.lastClientEndMs).toBeLessThan(grace + 2000)
      if (grace > 0) expect(figures.farewells).toBe(1000)
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
