/**
 * Slow and dead clients, fast tier: 100 clients that stop reading. The 1 000-client run is
 * test/stress/slow-clients.stress.ts (`npm run test:stress`).
 */

import { afterEach, expect, test } from 'vitest'
import { type CloseReason, createChannel, StreamRegistry } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { shortDurations } from '../../src/testing.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { stuckCheck } from './stuck.ts'
import { sleep, stuckClient, until } from './support.ts'

afterEach(closeAllServers)

test('with sendTimeout, 100 clients that stop reading are all dropped', async () => {
  const figures = await stuckCheck(100, 300)
  console.info(JSON.stringify(figures))
  expect(figures.reasons).toEqual({ timeout: 100 })
}, 60_000)

test('without sendTimeout, a stuck client costs the server a bounded amount: the pump never reads ahead', async () => {
  const figures = await stuckCheck(100, 0)
  console.info(JSON.stringify(figures))
  // Node's writable buffer (16 KiB) plus one 16 KiB batch and the event being encoded; the rest
  // sits in the kernel's socket buffers, which the kernel bounds.
  expect(figures.processKibPerClient).toBeLessThan(200)
  expect(figures.reasons).toEqual({ disconnect: 100 })
}, 60_000)

test('web path (@hono/node-server): a stuck client costs a bounded amount too', async () => {
  const figures = await stuckCheck(100, 0, 'web')
  console.info(JSON.stringify(figures))
  expect(figures.processKibPerClient).toBeLessThan(200)
  expect(figures.reasons).toEqual({ disconnect: 100 })
}, 60_000)

test('the honest limit: pings alone do not fill socket buffers, so sendTimeout catches a silent peer only once data backs up', async () => {
  const registry = new StreamRegistry()
  const closes: CloseReason[] = []
  const burst = createChannel<string>(0)
  const server = await nodeServer((req, res) => {
    void sendEventStream(
      req,
      res,
      burst,
      shortDurations({
        registry,
        ping: 20,
        sendTimeout: 200,
        onClose: (reason: CloseReason) => closes.push(reason),
      }),
    )
  })
  const client = await stuckClient(server.port)
  try {
    await until(() => registry.size === 1, 5000, 'stream open')
    // 50 pings (~2 KiB) go out into the kernel's buffers: every write succeeds, nothing stalls.
    await sleep(1000)
    expect(closes).toEqual([])
    // Data that cannot be flushed does stall, and the stream is dropped sendTimeout later.
    const big = 'b'.repeat(64 * 1024)
    const started = Date.now()
    while (closes.length === 0 && Date.now() - started < 20_000) {
      await Promise.race([burst.send(big), sleep(50)]).catch(() => {})
    }
    expect(closes).toEqual(['timeout'])
  } finally {
    client.destroy()
  }
})
