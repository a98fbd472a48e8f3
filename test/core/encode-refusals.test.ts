/**
 * What the encoder refuses, and how its errors read: which objects count as events (a
 * null-prototype object does; an object that only inherits its fields does not), text a custom
 * serializer returns is checked like any other text, and every error names the field, the code
 * point or the thrown value it is about — also when what was thrown is not an Error.
 */

import { runInNewContext } from 'node:vm'
import { afterEach, describe, expect, test } from 'vitest'
import {
  type CloseReason,
  encodeEvent,
  isSseError,
  ServerSentEvent,
  type SseError,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { readEvents } from '../../src/testing.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { waitFor } from '../helpers/wait.ts'

afterEach(closeAllServers)

function thrown(fn: () => unknown): SseError {
  try {
    fn()
  } catch (error) {
    if (isSseError(error)) return error
    throw new Error(`expected an SseError, got ${String(error)}`, { cause: error })
  }
  throw new Error('expected a throw')
}

describe('which objects are events', () => {
  test('a null-prototype object is a plain object: it encodes', () => {
    const init = Object.assign(Object.create(null) as object, { event: 'e', data: 'x' })
    expect(encodeEvent(init)).toBe('event: e\r\ndata: x\r\n\r\n')
  })

  test("another realm's plain object encodes; its class instances are refused", () => {
    expect(encodeEvent(runInNewContext('({ data: "x" })') as object)).toBe('data: x\r\n\r\n')
    const error = thrown(() => encodeEvent(runInNewContext('new (class Box { data = "x" })()')))
    expect(error.code).toBe('ERR_SSE_INVALID_EVENT')
  })

  test('keys inherited from a polluted Object.prototype are not read as unknown keys', () => {
    const init = runInNewContext('Object.prototype.polluted = 1; ({ data: "x" })') as object
    expect(encodeEvent(init)).toBe('data: x\r\n\r\n')
  })

  test('an object that only inherits its fields is refused, never sent as them', () => {
    const hidden = Object.assign(Object.create(null) as object, { data: 'secret' })
    const error = thrown(() => encodeEvent(Object.create(hidden) as object))
    expect(error.code).toBe('ERR_SSE_INVALID_EVENT')
    expect(error.message).toContain('expected a plain object')
  })

  test.each([
    [null, 'null'],
    [undefined, 'undefined'],
    ['text', 'string "text"'],
  ])('%j is refused as an event, naming what was received', (init, received) => {
    const error = thrown(() => encodeEvent(init as never))
    expect(error.code).toBe('ERR_SSE_INVALID_EVENT')
    expect(error.message).toContain(
      'expected a plain object with data, event, id, retry or comment',
    )
    expect(error.message).toContain(`received ${received}`)
  })

  test('an unknown key: the message lists every allowed key', () => {
    const error = thrown(() => encodeEvent({ data: 'x', evnet: 'typo' } as never))
    expect(error.message).toBe(
      'Invalid event: unknown key "evnet"; an event object may only have data, event, id, retry and comment.',
    )
  })
})

describe('errors name the field and the code point', () => {
  test.each([
    [{ data: 'a\uD800b' }, 'data', 'D800'],
    [{ comment: 'c\uDFFF' }, 'comment', 'DFFF'],
    [{ event: '\uDC00' }, 'event', 'DC00'],
  ])('%j', (init, field, code) => {
    const error = thrown(() => encodeEvent(init))
    expect(error.code).toBe('ERR_SSE_INVALID_FIELD')
    expect(error.message).toContain(`field "${field}"`)
    expect(error.message).toContain(`lone surrogate U+${code} `)
  })

  test('the lone surrogate is named even after a well-formed pair', () => {
    // '😀' is a surrogate pair: it is not the culprit, the lone low surrogate after it is.
    const error = thrown(() => encodeEvent({ data: '😀 \uDC00' }))
    expect(error.message).toContain('lone surrogate U+DC00 ')
  })

  test("a custom serializer's text is checked: a lone surrogate is refused, naming data", () => {
    const error = thrown(() => encodeEvent({ data: 1 }, { serialize: () => 'x\uD800' }))
    expect(error.code).toBe('ERR_SSE_INVALID_FIELD')
    expect(error.message).toContain('field "data"')
    expect(() => new ServerSentEvent({ data: 1 }, { serialize: () => '\uDBFF' })).toThrow(
      /field "data".*lone surrogate U\+DBFF/,
    )
  })

  test('a string yielded by a stream with a lone surrogate ends it with an error naming data', async () => {
    const errors: unknown[] = []
    const reasons: CloseReason[] = []
    const server = await nodeServer((req, res) => {
      void sendEventStream(req, res, () => ['before', 'bad \uD800', 'after'], {
        onError: (error) => errors.push(error),
        onClose: (reason) => reasons.push(reason),
      })
    })
    expect((await readEvents(server.url)).map((event) => event.data)).toEqual(['before'])
    await waitFor('the stream to close', () => reasons, { until: (r) => r.length === 1 })
    expect(reasons).toEqual(['error'])
    expect(errors).toHaveLength(1)
    const error = errors[0] as SseError
    expect(error.code).toBe('ERR_SSE_INVALID_FIELD')
    expect(error.message).toContain('field "data"')
    expect(error.message).toContain('U+D800')
  })
})

describe('what a throw that is not an Error becomes', () => {
  test.each([
    ['a string', 'boom', ': boom'],
    ['undefined', undefined, ': undefined'],
    ['null', null, ': null'],
  ])(
    'a serializer that throws %s: ERR_SSE_SERIALIZE, the value in the message',
    (_, value, tail) => {
      const error = thrown(() =>
        encodeEvent(
          { data: 1 },
          {
            serialize: () => {
              throw value
            },
          },
        ),
      )
      expect(error.code).toBe('ERR_SSE_SERIALIZE')
      expect(error.message.endsWith(tail)).toBe(true)
      expect(error.cause).toBe(value)
    },
  )

  test('a serializer that throws an Error: its message, not its name, in ours', () => {
    const error = thrown(() =>
      encodeEvent(
        { data: 1 },
        {
          serialize: () => {
            throw new RangeError('too deep')
          },
        },
      ),
    )
    expect(error.message).toBe('Could not serialize event data (number 1): too deep')
  })

  test.each([
    ['undefined', undefined, 'threw: undefined'],
    ['a string', 'nope', 'threw: nope'],
  ])(
    'a getter that throws %s: ERR_SSE_INVALID_EVENT, the value in the message',
    (_, value, tail) => {
      const init = {
        get data(): unknown {
          throw value
        },
      }
      const error = thrown(() => encodeEvent(init))
      expect(error.code).toBe('ERR_SSE_INVALID_EVENT')
      expect(error.message.endsWith(tail)).toBe(true)
      expect(error.cause).toBe(value)
    },
  )
})
