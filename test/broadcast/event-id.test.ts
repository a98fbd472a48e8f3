import fc from 'fast-check'
import { expect, test } from 'vitest'
import {
  formatEventId,
  MAX_EVENT_ID_LENGTH,
  newEpoch,
  parseEventId,
} from '../../src/broadcast/event-id.ts'

test('ids round-trip: <epoch>-<seq>', () => {
  const epoch = newEpoch()
  expect(epoch).toMatch(/^[0-9a-z]{10}$/)
  expect(formatEventId(epoch, 42)).toBe(`${epoch}-42`)
  expect(parseEventId(`${epoch}-42`)).toEqual({ epoch, seq: 42 })
  expect(parseEventId(`${epoch}-0`)).toEqual({ epoch, seq: 0 })
  fc.assert(
    fc.property(fc.stringMatching(/^[0-9a-z]{1,16}$/), fc.nat(), (e, seq) => {
      expect(parseEventId(formatEventId(e, seq))).toEqual({ epoch: e, seq })
    }),
  )
})

test('anything else is refused without throwing, in bounded time', () => {
  const bad = [
    '',
    '-1',
    'abc',
    'abc-',
    'ABC-1',
    'abc-01',
    'abc-1.5',
    'abc-1e3',
    'abc--1',
    'a-b-1',
    'abc-1234567890123456',
    `${'a'.repeat(17)}-1`,
    ' abc-1',
    'abc-1\n',
    'x'.repeat(MAX_EVENT_ID_LENGTH + 1),
    'a'.repeat(1_000_000),
  ]
  for (const text of bad) expect(parseEventId(text)).toBeUndefined()
  expect(parseEventId(undefined)).toBeUndefined()
  expect(parseEventId(42)).toBeUndefined()
  fc.assert(
    fc.property(fc.string(), (text) => {
      const parsed = parseEventId(text)
      if (parsed) expect(formatEventId(parsed.epoch, parsed.seq)).toBe(text)
    }),
  )
})
