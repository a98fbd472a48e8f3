import { describe, expect, test } from 'vitest'
import { createChannel, isSseError } from '../../src/index.ts'

const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('createChannel', () => {
  test('holds up to capacity, then send waits for the reader', async () => {
    const channel = createChannel<number>(2)
    await channel.send(1)
    await channel.send(2)
    let third = false
    const sending = channel.send(3).then(() => {
      third = true
    })
    await tick()
    expect(third).toBe(false)
    expect(channel.size).toBe(2)
    const reader = channel[Symbol.asyncIterator]()
    expect(await reader.next()).toEqual({ done: false, value: 1 })
    await sending
    expect(third).toBe(true)
    expect(channel.size).toBe(2)
  })

  test('close lets the reader drain what is queued, then finishes', async () => {
    const channel = createChannel<string>(5)
    await channel.send('a')
    await channel.send('b')
    channel.close()
    const items: string[] = []
    for await (const item of channel) items.push(item)
    expect(items).toEqual(['a', 'b'])
    expect(channel.closed).toBe(true)
  })

  test('send after close rejects with ERR_SSE_CHANNEL_CLOSED', async () => {
    const channel = createChannel(1)
    channel.close()
    const sending = channel.send('x')
    await expect(sending).rejects.toSatisfy(isSseError)
    await expect(sending).rejects.toMatchObject({
      code: 'ERR_SSE_CHANNEL_CLOSED',
      message: expect.stringContaining('after close()'),
    })
  })

  test('when the reader goes away, waiting and later sends reject', async () => {
    const channel = createChannel<number>(1)
    await channel.send(1)
    const waiting = channel.send(2)
    const reader = channel[Symbol.asyncIterator]()
    await reader.return?.()
    await expect(waiting).rejects.toThrow(/reader went away/)
    await expect(channel.send(3)).rejects.toMatchObject({ code: 'ERR_SSE_CHANNEL_CLOSED' })
    expect(channel.size).toBe(0)
  })

  test('a parked reader is woken by send and by close', async () => {
    const channel = createChannel<string>(0)
    const reader = channel[Symbol.asyncIterator]()
    const first = reader.next()
    await channel.send('direct')
    expect(await first).toEqual({ done: false, value: 'direct' })
    const second = reader.next()
    channel.close()
    expect(await second).toEqual({ done: true, value: undefined })
  })

  test('capacity 0 is a rendezvous: send waits until the reader takes the item', async () => {
    const channel = createChannel<string>(0)
    let delivered = false
    const sending = channel.send('x').then(() => {
      delivered = true
    })
    await tick()
    expect(delivered).toBe(false)
    const reader = channel[Symbol.asyncIterator]()
    expect(await reader.next()).toEqual({ done: false, value: 'x' })
    await sending
    expect(delivered).toBe(true)
  })

  test('keeps order under a long run of sends and reads', async () => {
    const channel = createChannel<number>(3)
    const produced = (async () => {
      for (let i = 0; i < 5000; i++) await channel.send(i)
      channel.close()
    })()
    let expected = 0
    for await (const item of channel) expect(item).toBe(expected++)
    await produced
    expect(expected).toBe(5000)
  })

  test('one reader only', () => {
    const channel = createChannel(1)
    channel[Symbol.asyncIterator]()
    expect(() => channel[Symbol.asyncIterator]()).toThrow(/one stream/)
  })

  test.each([-1, 1.5, '3', undefined])('capacity %j is refused', (capacity) => {
    expect(() => createChannel(capacity as never)).toThrow(/"capacity"/)
  })
})
