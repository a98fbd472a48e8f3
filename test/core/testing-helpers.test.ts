import { afterEach, expect, test } from 'vitest'
import { EventSourceResponse } from '../../src/index.ts'
import { readEvents, readMessages } from '../../src/testing.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { OPENING_MESSAGE } from '../helpers/streams.ts'

afterEach(closeAllServers)

test('reads a Response directly, without a server', async () => {
  const response = new EventSourceResponse(
    [{ data: 'a', event: 'x', id: '1' }, { comment: 'c' }, 'b'],
    { retry: 5 },
  )
  expect(await readMessages(response)).toEqual([
    OPENING_MESSAGE,
    { type: 'retry', retry: 5 },
    { type: 'event', data: 'a', event: 'x', id: '1' },
    { type: 'comment', comment: 'c' },
    { type: 'event', data: 'b', event: undefined, id: undefined },
  ])
})

test('count stops early; timeout rejects with what arrived', async () => {
  const endless = async function* () {
    yield 'one'
    yield 'two'
    await new Promise(() => {})
  }
  expect(
    (await readEvents(new EventSourceResponse(endless), { count: 1 })).map((e) => e.data),
  ).toEqual(['one'])
  const error = await readEvents(new EventSourceResponse(endless), {
    count: 5,
    timeout: 100,
  }).catch((e) => e)
  expect(error).toMatchObject({ code: 'ERR_SSE_TIMEOUT' })
  expect(error.partial.map((e: { data: string }) => e.data)).toEqual(['one', 'two'])
  expect(error.message).toContain('2 item(s) read of 5')
})

test('a response that is not an event stream is refused', async () => {
  const server = await nodeServer((_req, res) => res.end('{}'))
  await expect(readEvents(server.url)).rejects.toMatchObject({ code: 'ERR_SSE_RESPONSE' })
})

test('bad options are named', async () => {
  const response = () => new EventSourceResponse(['x'])
  await expect(readEvents(response(), { timeout: -1 })).rejects.toThrow(/"timeout".*number -1/)
  await expect(readEvents(response(), { count: 1.5 })).rejects.toThrow(/"count".*number 1\.5/)
})
