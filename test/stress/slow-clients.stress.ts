/**
 * Slow and dead clients, stress tier: 1 000 clients that stop reading.
 */

import { afterEach, expect, test } from 'vitest'
import { closeAllServers } from '../helpers/servers.ts'
import { stuckCheck } from '../reliability/stuck.ts'

afterEach(closeAllServers)

test('with sendTimeout, 1 000 stuck clients are all dropped and RSS stays bounded', async () => {
  const figures = await stuckCheck(1000, 500)
  console.info(JSON.stringify(figures))
  expect(figures.reasons).toEqual({ timeout: 1000 })
  // Bounded: the process holds no more than a few tens of KiB per stuck client at any time.
  expect(figures.rssPeakMb - figures.rssStartMb).toBeLessThan(300)
})

test('without sendTimeout, each of 1 000 stuck clients costs the process a bounded amount', async () => {
  const figures = await stuckCheck(1000, 0)
  console.info(JSON.stringify(figures))
  expect(figures.processKibPerClient).toBeLessThan(200)
  expect(figures.reasons).toEqual({ disconnect: 1000 })
})
