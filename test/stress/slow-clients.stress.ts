/**
 * Slow and dead clients, stress tier: 1 000 clients that stop reading.
 */

import { afterEach, expect, test, vi } from 'vitest'
import { closeAllServers } from '../helpers/servers.ts'
import { stuckBudgetKib, stuckCheck } from '../reliability/stuck.ts'

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
  expect(figures.processKibPerClient).toBeLessThan(stuckBudgetKib('node'))
  expect(figures.reasons).toEqual({ disconnect: 1000 })
})

test('web path: 1 000 stuck clients are dropped by sendTimeout, or cost a bounded amount', async () => {
  // @hono/node-server logs every response body Oven errors to drop a client: keep that quiet.
  const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
  try {
    const dropped = await stuckCheck(1000, 500, 'web')
    console.info(JSON.stringify(dropped))
    expect(dropped.reasons).toEqual({ timeout: 1000 })
    expect(dropped.rssPeakMb - dropped.rssStartMb).toBeLessThan(300)
  } finally {
    logged.mockRestore()
  }
  const stuck = await stuckCheck(1000, 0, 'web')
  console.info(JSON.stringify(stuck))
  expect(stuck.processKibPerClient).toBeLessThan(stuckBudgetKib('web'))
  expect(stuck.reasons).toEqual({ disconnect: 1000 })
})
