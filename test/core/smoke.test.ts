import { afterEach, expect, test } from 'vitest'
import { EventSourceResponse } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { readEvents } from '../../src/testing.ts'
import { closeAllServers, nodeServer, webServer } from '../helpers/servers.ts'

afterEach(closeAllServers)

test('node and web transports deliver the same events', async () => {
  const node = await nodeServer(
    (req, res) => void sendEventStream(req, res, ['a', { data: 'b', id: '1' }]),
  )
  const web = await webServer(
    (request) => new EventSourceResponse(['a', { data: 'b', id: '1' }], { request }),
  )
  for (const url of [node.url, web.url]) {
    const events = await readEvents(url)
    expect(events).toEqual([
      { data: 'a', event: undefined, id: undefined },
      { data: 'b', event: undefined, id: '1' },
    ])
  }
})
