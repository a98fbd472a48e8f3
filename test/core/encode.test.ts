import { createParser, type EventSourceMessage } from 'eventsource-parser'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { encodeEvent, isSseError, ServerSentEvent, SseError } from '../../src/index.ts'

/** Parses wire text with eventsource-parser, the way a client would. */
function parse(text: string): EventSourceMessage[] {
  const events: EventSourceMessage[] = []
  const parser = createParser({ onEvent: (event) => events.push(event) })
  parser.feed(text)
  // A parser holds a trailing CR until it sees whether LF follows; one more LF settles it
  // (and is a no-op blank line for the other separators).
  parser.feed('\n')
  return events
}

function thrown(fn: () => unknown): SseError {
  try {
    fn()
  } catch (error) {
    expect(isSseError(error)).toBe(true)
    return error as SseError
  }
  throw new Error('expected a throw')
}

describe('encodeEvent: exact wire text', () => {
  test.each([
    [{ data: 'hello' }, 'data: hello\r\n\r\n'],
    [{ data: '' }, 'data: \r\n\r\n'],
    [{ data: 'a\nb' }, 'data: a\r\ndata: b\r\n\r\n'],
    [{ data: 'a\r\nb' }, 'data: a\r\ndata: b\r\n\r\n'],
    [{ data: 'a\rb' }, 'data: a\r\ndata: b\r\n\r\n'],
    [{ data: 'a\r\rb' }, 'data: a\r\ndata: \r\ndata: b\r\n\r\n'],
    [{ data: 'a\n' }, 'data: a\r\ndata: \r\n\r\n'],
    [{ data: '\n' }, 'data: \r\ndata: \r\n\r\n'],
    [{ data: ' leading' }, 'data:  leading\r\n\r\n'],
    [{ data: ': not a comment' }, 'data: : not a comment\r\n\r\n'],
    [{ data: { n: 1 } }, 'data: {"n":1}\r\n\r\n'],
    [{ data: [1, 'x'] }, 'data: [1,"x"]\r\n\r\n'],
    [{ data: null }, 'data: null\r\n\r\n'],
    [{ data: 42 }, 'data: 42\r\n\r\n'],
    [{ event: 'update', data: 'x' }, 'event: update\r\ndata: x\r\n\r\n'],
    [{ id: '7', data: 'x' }, 'id: 7\r\ndata: x\r\n\r\n'],
    [{ id: '' }, 'id: \r\n\r\n'],
    [{ retry: 0 }, 'retry: 0\r\n\r\n'],
    [{ retry: 5000 }, 'retry: 5000\r\n\r\n'],
    [{ comment: 'ping' }, ': ping\r\n\r\n'],
    [{ comment: '' }, ': \r\n\r\n'],
    [{ comment: 'a\nb' }, ': a\r\n: b\r\n\r\n'],
    [{}, '\r\n'],
    [
      { comment: 'c', id: '7', event: 'e', data: 'd', retry: 1000 },
      ': c\r\nid: 7\r\nevent: e\r\ndata: d\r\nretry: 1000\r\n\r\n',
    ],
    [{ data: 'x', event: undefined, id: undefined }, 'data: x\r\n\r\n'],
  ])('%j', (init, wire) => {
    expect(encodeEvent(init)).toBe(wire)
  })

  test('every separator', () => {
    expect(encodeEvent({ data: 'a\nb', id: '1' }, { sep: '\n' })).toBe(
      'id: 1\ndata: a\ndata: b\n\n',
    )
    expect(encodeEvent({ data: 'a\nb', id: '1' }, { sep: '\r' })).toBe(
      'id: 1\rdata: a\rdata: b\r\r',
    )
    expect(encodeEvent({ data: 'a' }, { sep: '\r\n' })).toBe('data: a\r\n\r\n')
  })

  test('a custom serializer', () => {
    const serialize = (value: unknown) => `<${String(value)}>`
    expect(encodeEvent({ data: 5 }, { serialize })).toBe('data: <5>\r\n\r\n')
    // Strings are never serialized: they are the text to send.
    expect(encodeEvent({ data: 'raw' }, { serialize })).toBe('data: raw\r\n\r\n')
  })

  test('astral characters pass through unchanged', () => {
    expect(encodeEvent({ data: '𝄞 😀', event: 'ü' })).toBe('event: ü\r\ndata: 𝄞 😀\r\n\r\n')
  })
})

describe('encodeEvent: rejected values name the field, the expectation and the value', () => {
  test.each([
    [{ event: 'a\nb' }, 'event', 'a single line (no CR or LF)', '"a\\nb"'],
    [{ event: 'a\rb' }, 'event', 'a single line', '"a\\rb"'],
    [{ id: 'x\r\ny' }, 'id', 'a single line', '"x\\r\\ny"'],
    [{ id: 'a\0b' }, 'id', 'without NUL', '"a\\u0000b"'],
    [{ id: 5 }, 'id', 'a string', 'number 5'],
    [{ event: null }, 'event', 'a string', 'null'],
    [{ retry: -1 }, 'retry', 'a non-negative integer', 'number -1'],
    [{ retry: 1.5 }, 'retry', 'a non-negative integer', 'number 1.5'],
    [{ retry: '100' }, 'retry', 'a non-negative integer', 'string "100"'],
    [{ retry: Number.NaN }, 'retry', 'a non-negative integer', 'number NaN'],
    [{ comment: 7 }, 'comment', 'a string', 'number 7'],
  ])('%j', (init, field, expected, received) => {
    const error = thrown(() => encodeEvent(init as never))
    expect(error.code).toBe('ERR_SSE_INVALID_FIELD')
    expect(error.message).toContain(`"${field}"`)
    expect(error.message).toContain(expected)
    expect(error.message).toContain(received)
  })

  test('an unknown key is named', () => {
    const error = thrown(() => encodeEvent({ data: 'x', evnet: 'typo' } as never))
    expect(error.code).toBe('ERR_SSE_INVALID_EVENT')
    expect(error.message).toContain('"evnet"')
  })

  test('lone surrogates are refused in every text field', () => {
    for (const init of [
      { data: 'a\uD800b' },
      { event: '\uDC00' },
      { id: 'x\uD83D' },
      { comment: '\uDFFF' },
    ]) {
      const error = thrown(() => encodeEvent(init))
      expect(error.code).toBe('ERR_SSE_INVALID_FIELD')
      expect(error.message).toMatch(/lone surrogate U\+D[89A-F][0-9A-F]{2}/)
    }
  })

  test('data that cannot be serialized', () => {
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    const circular = thrown(() => encodeEvent({ data: cycle }))
    expect(circular.code).toBe('ERR_SSE_SERIALIZE')
    expect(circular.cause).toBeInstanceOf(TypeError)
    const big = thrown(() => encodeEvent({ data: 10n }))
    expect(big.code).toBe('ERR_SSE_SERIALIZE')
    expect(big.message).toContain('bigint 10')
    // JSON.stringify(() => {}) is undefined: no silent "data: undefined".
    const fn = thrown(() => encodeEvent({ data: () => 1 }))
    expect(fn.code).toBe('ERR_SSE_SERIALIZE')
    expect(fn.message).toContain('returned undefined')
    const bad = thrown(() => encodeEvent({ data: 1 }, { serialize: () => 5 as never }))
    expect(bad.message).toContain('expected a string')
  })

  test('an invalid separator', () => {
    const error = thrown(() => encodeEvent({ data: 'x' }, { sep: '||' as never }))
    expect(error.code).toBe('ERR_SSE_INVALID_OPTION')
    expect(error.message).toContain('"sep"')
    expect(error.message).toContain('string "||"')
  })

  test('injection attempts never produce a second field or event', () => {
    const attempts = [
      { event: 'evil\n\ndata: injected' },
      { id: '1\ndata: injected' },
      { event: 'x\r\nid: 99' },
      { id: '1\revent: admin' },
    ]
    for (const attempt of attempts) {
      expect(() => encodeEvent({ data: 'ok', ...attempt })).toThrow(SseError)
    }
    // Data and comments are split into lines of their own field, never into new fields.
    const wire = encodeEvent({ data: 'ok\n\nevent: admin\ndata: injected', comment: 'c\ndata: x' })
    expect(parse(wire)).toEqual([
      { data: 'ok\n\nevent: admin\ndata: injected', event: undefined, id: undefined },
    ])
  })
})

describe('ServerSentEvent', () => {
  test('the seed example', () => {
    const event = new ServerSentEvent({
      data: 'Custom message',
      event: 'notification',
      id: 'msg-123',
      retry: 5000,
    })
    expect(event.encode()).toBe(
      'id: msg-123\r\nevent: notification\r\ndata: Custom message\r\nretry: 5000\r\n\r\n',
    )
    expect(event.encode('\n')).toBe(
      'id: msg-123\nevent: notification\ndata: Custom message\nretry: 5000\n\n',
    )
    expect(event.data).toBe('Custom message')
  })

  test('is checked when built, not when sent', () => {
    expect(() => new ServerSentEvent({ event: 'a\nb' })).toThrow(/"event"/)
    expect(() => new ServerSentEvent({ data: 1n })).toThrow(SseError)
  })

  test('serializes data once, with an optional serializer', () => {
    let calls = 0
    const event = new ServerSentEvent(
      { data: { a: 1 } },
      {
        serialize: (value) => {
          calls++
          return JSON.stringify(value)
        },
      },
    )
    expect(event.data).toBe('{"a":1}')
    event.encode()
    event.encode('\n')
    event.encode()
    expect(calls).toBe(1)
  })

  test('caches its text per separator', () => {
    const event = new ServerSentEvent({ data: 'x' })
    expect(event.encode()).toBe(event.encode('\r\n'))
    expect(event.encode('\r')).toBe('data: x\r\r')
  })
})

describe('isSseError', () => {
  test('recognises errors from another copy of the library', () => {
    const foreign = new Error('x') as Error & Record<symbol, unknown>
    foreign[Symbol.for('oven-sse.SseError')] = true
    expect(isSseError(foreign)).toBe(true)
    expect(isSseError(new Error('x'))).toBe(false)
    expect(isSseError(null)).toBe(false)
  })
})

describe('property: the parser reads back exactly what was encoded', () => {
  const line = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !/[\r\n]/.test(s))
  test('any event', () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            data: fc.string({ unit: 'grapheme', maxLength: 200 }),
            event: line.filter((s) => s.length > 0),
            id: line.filter((s) => !s.includes('\0')),
          },
          { requiredKeys: ['data'] },
        ),
        fc.constantFrom('\r\n', '\n', '\r'),
        (init, sep) => {
          const events = parse(encodeEvent(init, { sep: sep as '\n' }))
          expect(events).toHaveLength(1)
          expect(events[0]?.data).toBe(init.data)
          expect(events[0]?.event).toBe(init.event)
          expect(events[0]?.id).toBe(init.id)
        },
      ),
      { numRuns: 300 },
    )
  })
})
