/**
 * A Broadcaster bound to a contract, over real sockets, with each schema library: published
 * events reach subscribers with their data as JSON (the schema's output); an event the
 * contract refuses makes `publish` reject and is never published (it takes no id, no
 * subscriber sees it); with an async schema, publishes keep the order they were made in.
 */

import { afterEach, describe, expect, test } from 'vitest'
import { type AnyContract, Broadcaster, type SseError } from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { readEvents } from '../../src/testing.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'
import { asyncContracts, badProgress, type JobContract, libraries } from './schemas.ts'

const hubs: Array<{ close(): Promise<void> }> = []
function makeHub(contract: JobContract, serialize?: (data: unknown) => string) {
  const hub = new Broadcaster({ contract, ...(serialize ? { serialize } : {}) })
  hubs.push(hub)
  return hub
}

const errors: unknown[] = []
afterEach(async () => {
  await Promise.all(hubs.splice(0).map((hub) => hub.close()))
  await closeAllServers()
  expect(errors.splice(0)).toEqual([])
})

/** A node:http server streaming `hub`'s topic `job` (resuming from Last-Event-ID). */
async function jobStream(hub: Pick<Broadcaster<AnyContract>, 'subscribe' | 'subscribers'>) {
  const server = await nodeServer((req, res) => {
    void sendEventStream(req, res, (ctx) => hub.subscribe('job', ctx), {
      onError: (error) => errors.push(error),
    })
  })
  return {
    url: server.url,
    live: (count: number) =>
      waitFor(`${count} subscribers`, () => hub.subscribers('job'), { until: (n) => n >= count }),
  }
}

async function failure(promise: Promise<unknown>): Promise<SseError> {
  return promise.then(
    () => {
      throw new Error('expected publish to reject')
    },
    (error: SseError) => error,
  )
}

/** The sequence number of an event id `<epoch>-<seq>`. */
const seq = (id: string | undefined) => Number(id?.split('-')[1])

describe.each(libraries)('a Broadcaster bound to the $name contract', ({ name, contract }) => {
  test('subscribers receive each event with its data as JSON, the schema output', async () => {
    const hub = makeHub(contract)
    const stream = await jobStream(hub)
    const read = readEvents(stream.url, { count: 2 })
    await stream.live(1)
    const ids = [
      await hub.publish('job', { event: 'progress', data: { percent: 40 } }),
      await hub.publish('job', { event: 'message', data: 'hello', retry: 2000 }),
    ]
    expect(await read).toEqual([
      { id: ids[0], event: 'progress', data: '{"percent":40,"note":""}' },
      { id: ids[1], event: 'message', data: '"hello"' },
    ])
  })

  test('an event the contract refuses is never published: publish rejects, no id is taken', async () => {
    const hub = makeHub(contract)
    const stream = await jobStream(hub)
    const read = readEvents(stream.url, { count: 2 })
    await stream.live(1)
    const first = await hub.publish('job', { event: 'done', data: { url: '/a' } })

    const invalid = await failure(
      hub.publish('job', { event: 'progress', data: badProgress as never }),
    )
    expect(invalid.code).toBe('ERR_SSE_INVALID_DATA')
    expect(invalid.message).toMatch(
      new RegExp(
        `^Invalid data for event "progress": its ${name} schema found 1 issue: at percent`,
      ),
    )
    const unknown = await failure(hub.publish('job', { event: 'finished', data: {} } as never))
    expect(unknown).toMatchObject({
      code: 'ERR_SSE_INVALID_EVENT',
      message:
        'Invalid event "finished": not in the contract; expected one of "progress", "message", "done".',
    })
    const withId = await failure(
      hub.publish('job', { event: 'done', data: { url: '/b' }, id: 'mine' } as never),
    )
    expect(withId.code).toBe('ERR_SSE_INVALID_EVENT')
    expect(withId.message).toContain('the broadcaster assigns ids itself')

    const second = await hub.publish('job', { event: 'done', data: { url: '/c' } })
    expect(seq(second)).toBe(seq(first) + 1)
    expect((await read).map((event) => event.data)).toEqual(['{"url":"/a"}', '{"url":"/c"}'])
    expect(hub.stats().published).toBe(2)
  })

  test('a client resuming with Last-Event-ID gets the events it missed, as they were sent', async () => {
    const hub = makeHub(contract)
    const stream = await jobStream(hub)
    const first = await hub.publish('job', { event: 'message', data: 'one' })
    await hub.publish('job', { event: 'progress', data: { percent: 2, note: 'two' } })
    const events = await readEvents(stream.url, { count: 1, lastEventId: first })
    expect(events).toMatchObject([{ event: 'progress', data: '{"percent":2,"note":"two"}' }])
  })
})

describe.each(asyncContracts)('a Broadcaster bound to an async $name contract', ({ contract }) => {
  test('publishes made without await keep their order; a refused one holds up nothing', async () => {
    const hub = makeHub(contract)
    const stream = await jobStream(hub)
    const read = readEvents(stream.url, { count: 5 })
    await stream.live(1)
    const publishes = [
      hub.publish('job', { event: 'progress', data: { percent: 1 } }),
      hub.publish('job', { event: 'message', data: 'sync after async' }),
      hub.publish('job', { event: 'progress', data: { percent: 13 } }),
      hub.publish('job', { event: 'message', data: 'after the refused one' }),
      hub.publish('job', { event: 'progress', data: { percent: 3 } }),
      hub.publish('job', { event: 'done', data: { url: '/end' } }),
    ]
    const settled = await Promise.allSettled(publishes)
    expect(settled.map((result) => result.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ])
    expect((settled[2] as PromiseRejectedResult).reason).toMatchObject({
      code: 'ERR_SSE_INVALID_DATA',
    })
    const ids = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
    expect(ids.map(seq)).toEqual([1, 2, 3, 4, 5])
    expect((await read).map((event) => event.data)).toEqual([
      '{"percent":1,"note":""}',
      '"sync after async"',
      '"after the refused one"',
      '{"percent":3,"note":""}',
      '{"url":"/end"}',
    ])
  })
})

describe('the contract option', () => {
  test("contract data is JSON whatever the broadcaster's serialize says", async () => {
    const hub = makeHub(libraries[0]!.contract, () => 'custom')
    const stream = await jobStream(hub)
    const read = readEvents(stream.url, { count: 1 })
    await stream.live(1)
    await hub.publish('job', { event: 'done', data: { url: '/x' } })
    expect((await read)[0]?.data).toBe('{"url":"/x"}')
  })

  test('a value that is not a contract is refused', () => {
    expect(() => new Broadcaster({ contract: { events: {}, validate: true } as never })).toThrow(
      'Invalid option "contract": expected a contract made by defineContract(), received an object.',
    )
  })

  test('a broadcaster without one is unchanged: any item, serialized by its serializer', async () => {
    const hub = new Broadcaster({ serialize: () => 'custom' })
    hubs.push(hub)
    const stream = await jobStream(hub)
    const read = readEvents(stream.url, { count: 2 })
    await stream.live(1)
    await hub.publish('job', 'text')
    await hub.publish('job', { event: 'anything', data: { n: 1 } })
    expect((await read).map(({ event, data }) => ({ event, data }))).toEqual([
      { event: undefined, data: 'text' },
      { event: 'anything', data: 'custom' },
    ])
  })
})
