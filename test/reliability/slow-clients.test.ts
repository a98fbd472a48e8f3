/**
 * Slow and dead clients, fast tier: 100 clients that stop reading. The 1 000-client run is
 * test/stress/slow-clients.stress.ts (`npm run test:stress`).
 */

import { afterEach, expect, test } from 'vitest'
import { type CloseReason, createChannel, StreamRegistry } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { shortDurations } from '../../src/testing.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'
import { stuckBudgetKib, stuckCheck } from './stuck.ts'
import { stuckClient } from './support.ts'

afterEach(closeAllServers)

test('with sendTimeout, 100 clients that stop reading are all dropped', async () => {
  const figures = await stuckCheck(100, 300)
  console.info(JSON.stringify(figures))
  expect(figures.reasons).toEqual({ timeout: 100 })
}, 60_000)

test('without sendTimeout, a stuck client costs the server a bounded amount: the pump never reads ahead', async () => {
  const figures = await stuckCheck(100, 0)
  console.info(JSON.stringify(figures))
  // Node's writable buffer plus one batch and the event being encoded (see stuckBudgetKib); the
  // rest sits in the kernel's socket buffers, which the kernel bounds. Measured (heap + external,
  // after a full GC): 72 KiB per client on Node 20, 74 on Node 24, with 64 KiB batches.
  expect(figures.processKibPerClient).toBeLessThan(stuckBudgetKib('node'))
  expect(figures.reasons).toEqual({ disconnect: 100 })
}, 60_000)

test('web path (@hono/node-server): a stuck client costs a bounded amount too', async () => {
  const figures = await stuckCheck(100, 0, 'web')
  console.info(JSON.stringify(figures))
  // Measured 207 KiB per client on Node 20, 213 on Node 24, with 64 KiB batches (the body stream
  // and @hono/node-server's reader each hold one).
  expect(figures.processKibPerClient).toBeLessThan(stuckBudgetKib('web'))
  expect(figures.reasons).toEqual({ disconnect: 100 })
}, 60_000)

test('the honest limit: pings alone do not fill socket buffers, so sendTimeout catches a silent peer only once data backs up', async () => {
  const registry = new StreamRegistry()
  const closes: CloseReason[] = []
  const burst = createChannel<string>(0)
  let pings = 0
  const server = await nodeServer((req, res) => {
    void sendEventStream(
      req,
      res,
      burst,
      shortDurations({
        registry,
        ping: 20,
        pingMessage: () => {
          pings++
          return { comment: 'ping' }
        },
        sendTimeout: 200,
        onClose: (reason: CloseReason) => closes.push(reason),
      }),
    )
  })
  const client = await stuckClient(server.port)
  try {
    await waitFor('stream open', () => registry.size, { until: (n) => n === 1 })
    // 50 pings (under 1 KiB) go out into the kernel's buffers: every write succeeds, none
    // waits for the 200 ms sendTimeout, and the stream stays open. Counted, not timed.
    await waitFor('50 pings written', () => pings, { until: (n) => n >= 50 })
    expect(closes).toEqual([])
    expect(registry.size).toBe(1)
    // Data that cannot be flushed does stall, and the stream is dropped sendTimeout later.
    const big = 'b'.repeat(64 * 1024)
    // 1 000 events (64 MiB) are far more than the buffers hold: the loop ends by the drop. Its
    // outcome is taken at once, so the refusal is never an unhandled rejection meanwhile.
    const sending = (async () => {
      for (let i = 0; i < 1000; i++) await burst.send(big)
      return 'all sent'
    })().catch((error: unknown) => error)
    await waitFor('the stream dropped', () => closes, {
      until: (seen) => seen.length > 0,
      timeout: 20_000,
    })
    expect(closes).toEqual(['timeout'])
    // The producer learns it: the send that waited is refused, not left pending.
    expect(await sending).toMatchObject({ code: 'ERR_SSE_CHANNEL_CLOSED' })
  } finally {
    client.destroy()
  }
})
