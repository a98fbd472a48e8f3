/**
 * Shutdown under load, stress tier: 5 000 open streams per transport, closeAll with and
 * without grace: every client sees a clean end within 2 s (plus the grace), server.close()
 * resolves, and a second server in the same process works afterwards.
 */

import { afterEach, expect, test } from 'vitest'
import { closeAllServers } from '../helpers/servers.ts'
import { secondServerWorks, shutdownCheck } from '../reliability/shutdown-load.ts'

afterEach(closeAllServers)

for (const transport of ['node', 'web'] as const) {
  for (const grace of [0, 1000]) {
    test(`${transport}: closeAll (grace ${grace} ms) ends 5 000 streams cleanly`, async () => {
      const figures = await shutdownCheck(transport, 5000, grace)
      console.info(JSON.stringify(figures))
      expect(figures.lastClientEndMs).toBeLessThan(grace + 2000)
      if (grace > 0) expect(figures.farewells).toBe(5000)
      await secondServerWorks(transport)
    })
  }
}
