/**
 * A stream's connection-limit slot is given back as the stream ends, before its `onClose` runs:
 * `onClose` (and whatever it reports, such as "open: 1/2") sees the count without it.
 */

import { afterEach, expect, test } from 'vitest'
import { ConnectionLimiter, EventSourceResponse } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { readEvents } from '../../src/testing.ts'
import { closeAllServers, nodeServer, webServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'

afterEach(closeAllServers)

for (const transport of ['node', 'web'] as const) {
  test(`${transport}: onClose sees the slot already given back`, async () => {
    const limit = new ConnectionLimiter({ max: 2 })
    const seen: number[] = []
    const options = { limit, onClose: () => seen.push(limit.size) }
    const server =
      transport === 'node'
        ? await nodeServer((req, res) => void sendEventStream(req, res, ['a'], options))
        : await webServer((request) => new EventSourceResponse(['a'], { request, ...options }))
    const events = await readEvents(server.url)
    expect(events.map((e) => e.data)).toEqual(['a'])
    await waitFor('onClose to run', () => seen.length === 1)
    expect(seen).toEqual([0])
    expect(limit.size).toBe(0)
  })
}
