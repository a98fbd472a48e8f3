/**
 * A channel bound to a contract, as the content of a real stream, with each schema library:
 * valid sends arrive with their data as JSON; a send the contract refuses rejects and is never
 * queued, and the stream goes on; with an async schema, sends keep their order.
 */

import { afterEach, describe, expect, test } from 'vitest'
import { type Channel, type ContractInput, createChannel, type SseError } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { readEvents } from '../../src/testing.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { asyncContracts, badProgress, type JobContract, libraries } from './schemas.ts'

afterEach(closeAllServers)

const errors: unknown[] = []
afterEach(() => {
  expect(errors.splice(0)).toEqual([])
})

/** A server whose one stream reads `channel`. */
async function channelStream(channel: Channel<ContractInput<JobContract>>) {
  const server = await nodeServer((req, res) => {
    void sendEventStream(req, res, channel, { onError: (error) => errors.push(error) })
  })
  return server.url
}

async function failure(promise: Promise<unknown>): Promise<SseError> {
  return promise.then(
    () => {
      throw new Error('expected send to reject')
    },
    (error: SseError) => error,
  )
}

describe.each(libraries)('a channel bound to the $name contract', ({ name, contract }) => {
  test('a refused send rejects and is never queued; the stream goes on', async () => {
    const channel = createChannel(4, { contract })
    const read = readEvents(await channelStream(channel))
    await channel.send({ event: 'progress', data: { percent: 5 } })
    const invalid = await failure(channel.send({ event: 'progress', data: badProgress as never }))
    expect(invalid.code).toBe('ERR_SSE_INVALID_DATA')
    expect(invalid.message).toMatch(
      new RegExp(
        `^Invalid data for event "progress": its ${name} schema found 1 issue: at percent`,
      ),
    )
    const unknown = await failure(channel.send({ event: 'nope', data: 1 } as never))
    expect(unknown.code).toBe('ERR_SSE_INVALID_EVENT')
    await channel.send({ event: 'message', data: 'still open' })
    channel.close()
    expect((await read).map(({ event, data }) => ({ event, data }))).toEqual([
      { event: 'progress', data: '{"percent":5,"note":""}' },
      { event: 'message', data: '"still open"' },
    ])
  })

  test('a refused send queues nothing, even with no reader', async () => {
    const channel = createChannel(2, { contract })
    await failure(channel.send({ event: 'progress', data: badProgress as never }))
    expect(channel.size).toBe(0)
    await channel.send({ event: 'done', data: { url: '/u' } })
    expect(channel.size).toBe(1)
  })
})

describe.each(asyncContracts)('a channel bound to an async $name contract', ({ contract }) => {
  test('sends made without await keep their order; a refused one holds up nothing', async () => {
    const channel = createChannel(10, { contract })
    const read = readEvents(await channelStream(channel))
    const sends = [
      channel.send({ event: 'progress', data: { percent: 1 } }),
      channel.send({ event: 'message', data: 'b' }),
      channel.send({ event: 'progress', data: { percent: 13 } }),
      channel.send({ event: 'message', data: 'c' }),
    ]
    const settled = await Promise.allSettled(sends)
    expect(settled.map((result) => result.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
    ])
    channel.close()
    expect((await read).map((event) => event.data)).toEqual([
      '{"percent":1,"note":""}',
      '"b"',
      '"c"',
    ])
  })

  test('a send still being validated when the channel closes is refused as closed', async () => {
    const channel = createChannel(10, { contract })
    const pending = channel.send({ event: 'progress', data: { percent: 1 } })
    channel.close()
    expect(await failure(pending)).toMatchObject({ code: 'ERR_SSE_CHANNEL_CLOSED' })
    expect(channel.size).toBe(0)
  })
})

describe('createChannel options', () => {
  test('bad options are refused, naming them', () => {
    expect(() => createChannel(1, {} as never)).toThrow(
      'Invalid option "contract": expected a contract made by defineContract(), received undefined.',
    )
    expect(() =>
      createChannel(1, { contract: libraries[0]!.contract, capacity: 2 } as never),
    ).toThrow('Unknown option "capacity" for createChannel(); the options are: contract.')
  })

  test('a closed bound channel refuses sends as any channel does', async () => {
    const channel = createChannel(1, { contract: libraries[0]!.contract })
    channel.close()
    expect(await failure(channel.send({ event: 'nope', data: 1 } as never))).toMatchObject({
      code: 'ERR_SSE_CHANNEL_CLOSED',
    })
  })
})
