/**
 * Declaring a contract and checking one event against it, with each schema library: what is
 * refused, with which code and message, and what a valid event becomes.
 */

import { describe, expect, test } from 'vitest'
import { z } from 'zod'
import {
  defineContract,
  isContract,
  type SseError,
  type StandardSchemaV1,
  validateEvent,
} from '../../src/index.ts'
import { asyncContracts, badProgress, libraries } from './schemas.ts'

/** The error `run` throws or rejects with. */
async function failure(run: () => unknown): Promise<SseError> {
  try {
    await run()
  } catch (error) {
    return error as SseError
  }
  throw new Error('expected an error, got none')
}

describe('defineContract', () => {
  test('returns a frozen contract, validating by default', () => {
    const schema = z.string()
    const contract = defineContract({ message: schema })
    expect(contract.events).toEqual({ message: schema })
    expect(contract.validate).toBe(true)
    expect(Object.isFrozen(contract)).toBe(true)
    expect(Object.isFrozen(contract.events)).toBe(true)
    expect(isContract(contract)).toBe(true)
    expect(isContract({ events: contract.events, validate: true })).toBe(false)
    expect(defineContract({ message: schema }, { validate: false }).validate).toBe(false)
  })

  test('keeps its own copy: changing the object given later changes nothing', () => {
    const events: Record<string, StandardSchemaV1> = { message: z.string() }
    const contract = defineContract(events)
    events.other = z.number()
    expect(Object.keys(contract.events)).toEqual(['message'])
  })

  test.each([
    [{ parse: () => 1 }, 'an object'],
    [null, 'null'],
    ['string', 'string "string"'],
    [{ '~standard': { version: 2, validate: () => ({}) } }, 'an object'],
    [{ '~standard': { version: 1 } }, 'an object'],
  ])('a value that is not a Standard Schema is refused: %j', async (value, received) => {
    const error = await failure(() => defineContract({ ok: z.string(), progress: value } as never))
    expect(error.code).toBe('ERR_SSE_INVALID_OPTION')
    expect(error.message).toBe(
      'Invalid contract: event "progress": expected a Standard Schema (a schema of zod 4, ' +
        'valibot, arktype or another library with a "~standard" property, version 1, with ' +
        `validate()), received ${received}.`,
    )
  })

  test.each([
    [undefined, 'expected an object mapping event names to schemas, received undefined.'],
    [[z.string()], 'expected an object mapping event names to schemas, received an array.'],
    [{}, 'expected at least one event, received an empty object.'],
    [
      { 'a\nb': z.string() },
      'expected event names that are non-empty single lines of well-formed text, received ' +
        'string "a\\nb".',
    ],
    [
      { '': z.string() },
      'expected event names that are non-empty single lines of well-formed text, received ' +
        'string "".',
    ],
  ])('bad events are refused: %j', async (events, message) => {
    const error = await failure(() => defineContract(events as never))
    expect(error.code).toBe('ERR_SSE_INVALID_OPTION')
    expect(error.message).toBe(`Invalid contract: ${message}`)
  })

  test('bad options are refused, naming them', async () => {
    const events = { message: z.string() }
    expect(await failure(() => defineContract(events, { validat: false } as never))).toMatchObject({
      code: 'ERR_SSE_INVALID_OPTION',
      message: 'Unknown option "validat" for defineContract(); the options are: validate.',
    })
    expect(await failure(() => defineContract(events, { validate: 'no' } as never))).toMatchObject({
      code: 'ERR_SSE_INVALID_OPTION',
      message: 'Invalid option "validate": expected a boolean, received string "no".',
    })
    expect(await failure(() => defineContract(events, 1 as never))).toMatchObject({
      code: 'ERR_SSE_INVALID_OPTION',
      message: 'Invalid options for defineContract(): expected an object, received number 1.',
    })
  })
})

describe.each(libraries)('validateEvent with $name', ({ name, contract }) => {
  test('a valid event comes back with the schema output as data (defaults filled in)', async () => {
    expect(
      await validateEvent(contract, { event: 'progress', data: { percent: 50 }, id: '7' }),
    ).toEqual({ event: 'progress', data: { percent: 50, note: '' }, id: '7', retry: undefined })
    expect(await validateEvent(contract, { event: 'message', data: 'hi' })).toMatchObject({
      event: 'message',
      data: 'hi',
    })
  })

  test('data the schema rejects: ERR_SSE_INVALID_DATA naming the event, with its issues', async () => {
    const error = await failure(() =>
      validateEvent(contract, { event: 'progress', data: badProgress }),
    )
    expect(error.code).toBe('ERR_SSE_INVALID_DATA')
    expect(error.message).toMatch(
      new RegExp(
        `^Invalid data for event "progress": its ${name} schema found 1 issue: at percent: .+\\.$`,
      ),
    )
    // The schema's own result: its issue list, as the library made it.
    const issues = (error.cause as StandardSchemaV1.FailureResult).issues
    expect(issues).toHaveLength(1)
    expect(error.message).toContain(issues[0]?.message)
  })

  test('several issues are all listed', async () => {
    const error = await failure(() =>
      validateEvent(contract, { event: 'progress', data: { percent: 500, note: 7 } }),
    )
    expect(error.code).toBe('ERR_SSE_INVALID_DATA')
    expect(error.message).toContain('found 2 issues: at ')
    expect(error.message).toContain('percent')
    expect(error.message).toContain('note')
  })

  test('an event name not in the contract: ERR_SSE_INVALID_EVENT listing the names', async () => {
    const error = await failure(() => validateEvent(contract, { event: 'progres', data: {} }))
    expect(error.code).toBe('ERR_SSE_INVALID_EVENT')
    expect(error.message).toBe(
      'Invalid event "progres": not in the contract; expected one of "progress", "message", "done".',
    )
  })

  test('inherited names are not events of the contract', async () => {
    for (const event of ['toString', '__proto__', 'constructor']) {
      const error = await failure(() => validateEvent(contract, { event, data: {} }))
      expect(error.code).toBe('ERR_SSE_INVALID_EVENT')
    }
  })
})

describe('validateEvent, the shape of an event', () => {
  const [{ contract }] = libraries as [(typeof libraries)[0]]

  test.each([
    ['text', 'string "text"'],
    [null, 'null'],
    [[1], 'an array'],
    [Promise.resolve({ event: 'message', data: 'x' }), 'a Promise (did you forget await?)'],
    [{ data: 'x' }, 'an object whose event is undefined'],
    [{ event: 7, data: 'x' }, 'an object whose event is number 7'],
  ])('%j is not an event object', async (item, received) => {
    const error = await failure(() => validateEvent(contract, item))
    expect(error.code).toBe('ERR_SSE_INVALID_EVENT')
    expect(error.message).toBe(
      'Invalid event: expected an object { event, data } whose event is one of "progress", ' +
        `"message", "done", received ${received}.`,
    )
  })

  test('an unknown key is refused, naming it', async () => {
    const error = await failure(() =>
      validateEvent(contract, { event: 'message', data: 'x', comment: 'hi' }),
    )
    expect(error.code).toBe('ERR_SSE_INVALID_EVENT')
    expect(error.message).toBe(
      'Invalid event: unknown key "comment"; a contract event may only have event, data, id and retry.',
    )
  })

  test('a contract that is not one is refused', async () => {
    const error = await failure(() => validateEvent({ events: {} } as never, {}))
    expect(error.code).toBe('ERR_SSE_INVALID_OPTION')
    expect(error.message).toBe(
      'Invalid option "contract": expected a contract made by defineContract(), received an object.',
    )
  })

  test('validate: false checks the name but not the data', async () => {
    const trusted = defineContract(libraries[0]!.contract.events, { validate: false })
    expect(validateEvent(trusted, { event: 'progress', data: badProgress })).toEqual({
      event: 'progress',
      data: badProgress,
      id: undefined,
      retry: undefined,
    })
    expect((await failure(() => validateEvent(trusted, { event: 'x', data: 1 }))).code).toBe(
      'ERR_SSE_INVALID_EVENT',
    )
  })
})

describe.each(asyncContracts)('an async schema ($name)', ({ contract }) => {
  test('answers with a promise of the checked event', async () => {
    const checked = validateEvent(contract, { event: 'progress', data: { percent: 1 } })
    expect(checked).toBeInstanceOf(Promise)
    expect(await checked).toMatchObject({ data: { percent: 1, note: '' } })
  })

  test('rejects with ERR_SSE_INVALID_DATA and the issues', async () => {
    const error = await failure(() =>
      validateEvent(contract, { event: 'progress', data: { percent: 13 } }),
    )
    expect(error.code).toBe('ERR_SSE_INVALID_DATA')
    expect(error.message).toContain('found 1 issue: unlucky')
  })

  test('a synchronous event of the same contract is still answered at once', () => {
    expect(validateEvent(contract, { event: 'message', data: 'x' })).not.toBeInstanceOf(Promise)
  })
})
