/**
 * Hostile input: property-based fuzzing of the encoder and of every option validator, field
 * injection attempts (the class of Hono GHSA-p6xx-57qc-3wxr and h3 GHSA-4hxc-9384-m385), and
 * huge or malformed request headers. Everything must end in a clear `SseError` or a bounded
 * answer — never a crash, a `TypeError` from deep inside, or a second event smuggled in.
 */

import { connect } from 'node:net'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import fc from 'fast-check'
import { afterEach, describe, expect, test } from 'vitest'
import {
  Broadcaster,
  ConnectionLimiter,
  createChannel,
  EventSourceResponse,
  encodeEvent,
  installShutdownHandlers,
  isSseError,
  ServerSentEvent,
  type SseErrorCode,
  StreamRegistry,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'
import { readMessages, shortDurations } from '../../src/testing.ts'
import { closeAllServers, nodeServer } from '../helpers/servers.ts'
import { afterOpening } from '../helpers/streams.ts'
import { fetchText } from './support.ts'

afterEach(closeAllServers)

// `npm test` replays a fixed seed, so it never fails on a case found by chance; the stress tier
// (test/stress/fuzz.stress.ts) explores with a random seed and 25 times the runs, and prints
// the seed of any failure (replay it with OVEN_FUZZ_SEED=<seed>).
const SCALE = Number(process.env.OVEN_FUZZ_SCALE ?? 1)
const SEED = process.env.OVEN_FUZZ_SEED
const RUNS = {
  numRuns: 400 * SCALE,
  ...(SEED === 'random' ? {} : { seed: Number(SEED ?? 20261124) }),
}

/** Parses wire text as a browser would. */
function parse(text: string) {
  const events: EventSourceMessage[] = []
  const comments: string[] = []
  const retries: number[] = []
  const parser = createParser({
    onEvent: (event) => events.push(event),
    onComment: (comment) => comments.push(comment),
    onRetry: (retry) => retries.push(retry),
  })
  // eventsource-parser holds a final CR until the next byte (it could be the first half of a
  // CRLF): with `sep: '\r'` the last event of a burst waits for the next chunk. An LF after a CR
  // completes it without adding a line.
  parser.feed(text.endsWith('\r') ? `${text}\n` : text)
  return { events, comments, retries }
}

/** Runs `fn`; if it throws, the error must be an SseError with one of `codes`. */
function throwsOnly(
  codes: SseErrorCode[],
  fn: () => unknown,
): { ok: true; value: unknown } | { ok: false; code: SseErrorCode } {
  try {
    return { ok: true, value: fn() }
  } catch (error) {
    if (!isSseError(error) || !codes.includes(error.code)) {
      throw new Error(`expected an SseError (${codes.join(', ')}), got: ${String(error)}`, {
        cause: error,
      })
    }
    expect(error.message.length).toBeLessThan(600)
    return { ok: false, code: error.code }
  }
}

// Text biased towards the characters that matter on the wire.
const wireChar = fc.constantFrom(
  '\r',
  '\n',
  '\r\n',
  '\0',
  ':',
  ' ',
  'data: ',
  'id: ',
  'event: ',
  'a',
  'é',
  '😀',
  '\uD800',
  '\uDC00',
)
const wireText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.array(wireChar, { maxLength: 12 }).map((parts) => parts.join('')),
)
const sep = fc.constantFrom('\r\n', '\n', '\r' as const)
/**
 * Mostly a value the field can carry (`valid`), sometimes anything at all: so that the
 * faithful-encoding checks run on most inputs instead of only on the few that happen to be
 * valid in every field at once.
 */
const mostly = <T>(valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<unknown>) =>
  fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: hostile, weight: 1 })
/** Wire text without the characters an event name or id may not hold (line breaks, NUL). */
const fieldText = wireText.map((text) => text.replace(/[\r\n\0]/g, ''))

/**
 * Whether the wire can carry `init` as given, by the documented rules: text fields are
 * well-formed Unicode; an event name or id holds no line break (an id no NUL either); retry is
 * whole milliseconds a timer can wait. Only string fields are judged; other values may be
 * refused or serialized, and are not counted here.
 */
function acceptable(init: Record<string, unknown>): boolean {
  const text = (value: unknown) =>
    value === undefined || (typeof value === 'string' && value.isWellFormed())
  const { data, event, id, retry, comment } = init
  return (
    text(data) &&
    text(comment) &&
    text(event) &&
    text(id) &&
    !/[\r\n]/.test((event as string | undefined) ?? '') &&
    !/[\r\n\0]/.test((id as string | undefined) ?? '') &&
    (retry === undefined ||
      (typeof retry === 'number' && Number.isInteger(retry) && retry >= 0 && retry < 2 ** 31))
  )
}

describe('encoder fuzzing', () => {
  test('any event either encodes to exactly one faithful event, or throws a clear SseError', () => {
    // Counted, so the property cannot pass by refusing: an encoder that threw on every input
    // would satisfy every check below vacuously.
    const outcomes = { accepted: 0, withData: 0, refused: {} as Record<string, number> }
    fc.assert(
      fc.property(
        fc.record(
          {
            data: fc.oneof(wireText, fc.anything({ maxDepth: 2 })),
            event: mostly(fieldText, fc.oneof(wireText, fc.anything({ maxDepth: 1 }))),
            id: mostly(fieldText, fc.oneof(wireText, fc.anything({ maxDepth: 1 }))),
            retry: mostly(
              fc.nat({ max: 2 ** 31 - 1 }),
              fc.oneof(fc.integer(), fc.double(), fc.anything({ maxDepth: 1 })),
            ),
            comment: mostly(wireText, fc.anything({ maxDepth: 1 })),
          },
          { requiredKeys: [] },
        ),
        sep,
        (init, separator) => {
          const result = throwsOnly(
            ['ERR_SSE_INVALID_FIELD', 'ERR_SSE_SERIALIZE', 'ERR_SSE_INVALID_EVENT'],
            () => encodeEvent(init as never, { sep: separator }),
          )
          if (!result.ok) {
            // An event the wire can carry must never be refused.
            expect(acceptable(init), `refused with ${result.code}`).toBe(false)
            outcomes.refused[result.code] = (outcomes.refused[result.code] ?? 0) + 1
            return
          }
          outcomes.accepted++
          if (init.data !== undefined) outcomes.withData++
          const text = result.value as string
          // The output is well-formed UTF-8 text.
          expect(text.isWellFormed()).toBe(true)
          const { events, retries } = parse(text)
          // (+ 0 turns a -0 into the 0 the wire carries.)
          if (init.retry !== undefined) expect(retries).toEqual([(init.retry as number) + 0])
          if (init.data === undefined) {
            expect(events).toHaveLength(0)
            return
          }
          // Exactly one event, carrying exactly the fields given: nothing injected.
          expect(events).toHaveLength(1)
          const event = events[0]!
          const data = typeof init.data === 'string' ? init.data : JSON.stringify(init.data)
          expect(event.data).toBe(data.replace(/\r\n|\r/g, '\n'))
          expect(event.event).toBe(init.event === '' ? undefined : init.event)
          expect(event.id).toBe(init.id)
        },
      ),
      RUNS,
    )
    console.info(`[figures] encoder property: ${JSON.stringify(outcomes)}`)
    // Measured with the fixed seed: 36% of the 400 inputs accepted, 30% with data. A tenth and
    // a twentieth of the runs leave room for a change of generator or seed without letting an
    // encoder that refuses (almost) everything through.
    expect(outcomes.accepted).toBeGreaterThanOrEqual(RUNS.numRuns / 10)
    expect(outcomes.withData).toBeGreaterThanOrEqual(RUNS.numRuns / 20)
  })

  test('ServerSentEvent accepts what encodeEvent accepts and nothing else', () => {
    fc.assert(
      fc.property(wireText, wireText, wireText, (event, id, comment) => {
        const a = throwsOnly(['ERR_SSE_INVALID_FIELD'], () =>
          new ServerSentEvent({ event, id, comment, data: 'x' }).encode('\n'),
        )
        const b = throwsOnly(['ERR_SSE_INVALID_FIELD'], () =>
          encodeEvent({ event, id, comment, data: 'x' }, { sep: '\n' }),
        )
        expect(a).toEqual(b)
      }),
      RUNS,
    )
  })

  // Issue #17, item 9: a Promise, Date, Map, array, Error or RegExp given as an event was
  // encoded as an empty event. Whatever the value, the answer is an event with at least one
  // field line, or ERR_SSE_INVALID_EVENT: never a blank line alone.
  test('any value given as an event is a plain object with fields, or refused', () => {
    const odd = fc.constantFrom<unknown>(
      Promise.resolve({ data: 'x' }),
      new Date(0),
      new Map([['data', 'x']]),
      new Set(['x']),
      [{ data: 'x' }],
      new Error('x'),
      /x/,
      new (class Reading {})(),
      new Uint8Array(1),
      Object.create({ data: 'inherited' }),
    )
    fc.assert(
      fc.property(fc.oneof(odd, fc.anything({ maxDepth: 2 })), (value) => {
        const result = throwsOnly(
          ['ERR_SSE_INVALID_EVENT', 'ERR_SSE_INVALID_FIELD', 'ERR_SSE_SERIALIZE'],
          () => encodeEvent(value as never),
        )
        const proto = typeof value === 'object' && value !== null && Object.getPrototypeOf(value)
        const plain = proto === Object.prototype || proto === null
        if (!plain) expect(result.ok).toBe(false)
        if (result.ok && Object.values(value as object).some((v) => v !== undefined)) {
          expect(result.value).not.toBe('\r\n')
        }
      }),
      RUNS,
    )
  })

  test('any separator other than CRLF, LF or CR is refused', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const result = throwsOnly(['ERR_SSE_INVALID_OPTION'], () =>
          encodeEvent({ data: 'x' }, { sep: value as never }),
        )
        expect(result.ok).toBe(
          value === undefined || value === '\r\n' || value === '\n' || value === '\r',
        )
      }),
      RUNS,
    )
  })
})

describe('injection attempts', () => {
  const payloads = [
    '\ndata: injected',
    '\rdata: injected',
    '\r\ndata: injected',
    'x\n\ndata: injected\n\n',
    'x\r\rid: 666\r\r',
    '\u2028data: injected',
    'ok\0id',
  ]

  test.each(payloads)('event and id %j are refused, never rewritten', (payload) => {
    for (const field of ['event', 'id'] as const) {
      const result = throwsOnly(['ERR_SSE_INVALID_FIELD'], () =>
        encodeEvent({ data: 'x', [field]: payload }),
      )
      if (result.ok) {
        // Only characters the wire carries safely pass (U+2028 is not a line break in SSE).
        const { events } = parse(result.value as string)
        expect(events).toHaveLength(1)
        expect(events[0]![field]).toBe(payload)
      } else {
        expect(/[\r\n]/.test(payload) || (field === 'id' && payload.includes('\0'))).toBe(true)
      }
    }
  })

  test.each(payloads)('data and comment %j stay inside their own field', (payload) => {
    const { events, comments } = parse(encodeEvent({ comment: payload, data: payload }))
    expect(events).toHaveLength(1)
    expect(events[0]!.data).toBe(payload.replace(/\r\n|\r/g, '\n'))
    expect(events[0]!.id).toBeUndefined()
    expect(comments.join('\n')).toBe(payload.replace(/\r\n|\r/g, '\n'))
  })

  test.each([
    '5\ndata: injected',
    '-1',
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    '1000',
    2 ** 60,
  ])('retry %j is refused', (retry) => {
    expect(() => encodeEvent({ data: 'x', retry: retry as number })).toThrow(
      expect.objectContaining({ code: 'ERR_SSE_INVALID_FIELD' }),
    )
  })

  test('over the wire: an injected id ends that stream with an error and smuggles nothing', async () => {
    const errors: unknown[] = []
    const server = await nodeServer((req, res) => {
      const attacker = new URL(req.url ?? '/', 'http://x').searchParams.get('name') ?? ''
      void sendEventStream(
        req,
        res,
        [
          { data: 'welcome' },
          { event: 'greeting', id: attacker, data: `hello ${attacker}` },
          { data: 'after' },
        ],
        { registry: new StreamRegistry(), onError: (error) => errors.push(error) },
      )
    })
    const name = encodeURIComponent('7\nevent: admin\ndata: pwned\n\n')
    const messages = afterOpening(await readMessages(`${server.url}/?name=${name}`))
    expect(messages).toEqual([{ type: 'event', data: 'welcome', event: undefined, id: undefined }])
    expect(errors).toHaveLength(1)
    expect((errors[0] as Error).message).toMatch(/Invalid event field "id"/)
  })

  test('over the wire: attacker text in data and comments is delivered verbatim, as one event', async () => {
    const attacker = 'hi\n\nevent: admin\ndata: pwned\r\nid: 1\r\r: x'
    const server = await nodeServer((req, res) => {
      void sendEventStream(req, res, [{ comment: attacker, data: attacker }], {
        registry: new StreamRegistry(),
      })
    })
    const messages = await readMessages(server.url)
    const events = messages.filter((m) => m.type === 'event')
    expect(events).toEqual([
      { type: 'event', data: attacker.replace(/\r\n|\r/g, '\n'), event: undefined, id: undefined },
    ])
  })
})

describe('option validators fuzzing', () => {
  const optionNames = [
    'status',
    'headers',
    'ping',
    'pingMessage',
    'sep',
    'sendTimeout',
    'retry',
    'serialize',
    'dataSender',
    'onClose',
    'onError',
    'registry',
    'shutdownGrace',
    'onShutdown',
    'limit',
    'request',
  ]

  test('every option: any value is accepted or refused with ERR_SSE_INVALID_OPTION', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...optionNames),
        fc.oneof(fc.anything(), fc.double(), fc.integer(), fc.string()),
        (name, value) => {
          throwsOnly(
            ['ERR_SSE_INVALID_OPTION'],
            () => new EventSourceResponse(['a'], { [name]: value }),
          )
        },
      ),
      { ...RUNS, numRuns: 2000 * SCALE },
    )
  })

  test('hostile header names and values are refused with ERR_SSE_INVALID_OPTION', () => {
    const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,20}$/)
    fc.assert(
      fc.property(
        fc.oneof(token, wireText),
        fc.oneof(fc.string({ maxLength: 20 }), wireText),
        (name, value) => {
          throwsOnly(
            ['ERR_SSE_INVALID_OPTION'],
            () => new EventSourceResponse(['a'], { headers: { [name]: value } }),
          )
          throwsOnly(
            ['ERR_SSE_INVALID_OPTION'],
            () => new EventSourceResponse(['a'], { headers: [[name, value]] }),
          )
        },
      ),
      RUNS,
    )
  })

  test('unknown option names are refused, naming the key', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 20 }), (name) => {
        fc.pre(!optionNames.includes(name))
        expect(() => new EventSourceResponse(['a'], { [name]: 1 } as never)).toThrow(
          /Unknown option/,
        )
      }),
      RUNS,
    )
  })

  // closeAll's grace is checked value by value in 'durations and shutdown handlers' below.
  test('ConnectionLimiter and createChannel validate every value', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('max', 'maxPerKey', 'key', 'retryAfter'),
        fc.anything(),
        (name, value) => {
          throwsOnly(
            ['ERR_SSE_INVALID_OPTION'],
            () => new ConnectionLimiter({ [name]: value, key: () => 'k' }),
          )
        },
      ),
      RUNS,
    )
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.double(), fc.integer()), (capacity) => {
        throwsOnly(['ERR_SSE_INVALID_OPTION'], () => createChannel(capacity as number))
      }),
      RUNS,
    )
  })
})

describe('durations and shutdown handlers', () => {
  // setTimeout silently turns a delay above 2^31 - 1 ms into 1 ms: `ping: 3e9` used to ping
  // every millisecond, and `sendTimeout: 3e9` to drop any stream whose write blocked. A fraction
  // such as `ping: 1e-13` froze the keep-alive timer (`now + ping === now`), and `ping: 10`,
  // `sendTimeout: 30` are seconds written where milliseconds belong (issue #17, item 6).
  test('a duration is accepted exactly when it is whole ms a timer can wait, above its floor', async () => {
    const MAX = 2 ** 31 - 1
    const value = fc.oneof(
      fc.double({ min: -1e12, max: 1e12 }),
      fc.integer({ min: -5, max: 2000 }),
      fc.integer({ min: MAX - 3, max: MAX + 3 }),
      fc.constantFrom(Number.POSITIVE_INFINITY, Number.NaN, -0, 0, 1e-13, 999, 1000, MAX, 3e9),
    )
    const floors: Record<string, number> = { ping: 1000, sendTimeout: 1000, shutdownGrace: 1 }
    fc.assert(
      fc.property(
        fc.constantFrom('ping', 'sendTimeout', 'shutdownGrace'),
        value,
        fc.boolean(),
        (name, ms, short) => {
          const options = { [name]: ms }
          const result = throwsOnly(
            ['ERR_SSE_INVALID_OPTION'],
            () => new EventSourceResponse(['a'], short ? shortDurations(options) : options),
          )
          const floor = short ? 1 : floors[name]!
          expect(result.ok).toBe(Number.isInteger(ms) && (ms === 0 || (ms >= floor && ms <= MAX)))
        },
      ),
      RUNS,
    )
    await fc.assert(
      fc.asyncProperty(value, async (ms) => {
        let ok = true
        try {
          await new StreamRegistry().closeAll({ grace: ms })
        } catch (error) {
          ok = false
          expect(isSseError(error) && error.code).toBe('ERR_SSE_INVALID_OPTION')
        }
        expect(ok).toBe(Number.isInteger(ms) && ms >= 0 && ms <= MAX)
      }),
      RUNS,
    )
  })

  test('installShutdownHandlers checks every option at once and never leaves a handler behind', () => {
    const server = { close: (done?: () => void) => done?.() }
    const before = process.listenerCount('SIGTERM') + process.listenerCount('SIGINT')
    fc.assert(
      fc.property(
        fc.constantFrom('registry', 'grace', 'signals', 'forceAfter', 'exit', 'onDone', 'other'),
        fc.oneof(
          fc.anything(),
          fc.double(),
          fc.constantFrom(3e9, ['SIGKILL'], ['SIGSTOP'], ['SIGTERM', ''], [42]),
        ),
        (name, value) => {
          const result = throwsOnly(['ERR_SSE_INVALID_OPTION'], () =>
            installShutdownHandlers(server, { [name]: value, exit: false } as never),
          )
          if (result.ok) (result.value as () => void)()
        },
      ),
      RUNS,
    )
    expect(() => installShutdownHandlers(server, { signals: ['SIGKILL'] })).toThrow(
      /Invalid option "signals": expected signals a process can handle/,
    )
    expect(() => installShutdownHandlers(server, { grace: 3e9 })).toThrow(/to 2147483647/)
    expect(process.listenerCount('SIGTERM') + process.listenerCount('SIGINT')).toBe(before)
  })
})

describe('broadcaster validators fuzzing', () => {
  test('Broadcaster options and subscribe() refuse bad values with ERR_SSE_INVALID_OPTION', async () => {
    const hubs: Broadcaster[] = []
    fc.assert(
      fc.property(
        fc.constantFrom('history', 'queue', 'overflow', 'serialize', 'onError', 'broker', 'other'),
        fc.oneof(fc.anything(), fc.integer(), fc.double()),
        (name, value) => {
          const result = throwsOnly(
            ['ERR_SSE_INVALID_OPTION'],
            () => new Broadcaster({ [name]: value }),
          )
          if (result.ok) hubs.push(result.value as Broadcaster)
        },
      ),
      RUNS,
    )
    const hub = new Broadcaster()
    hubs.push(hub)
    fc.assert(
      fc.property(
        fc.oneof(fc.anything(), fc.array(wireText, { maxLength: 5 }), wireText),
        fc.oneof(
          fc.constant(undefined),
          fc.anything(),
          fc.record({ lastEventId: fc.anything(), filter: fc.anything() }, { requiredKeys: [] }),
        ),
        (topics, options) => {
          const result = throwsOnly(['ERR_SSE_INVALID_OPTION'], () =>
            hub.subscribe(topics as string[], options as never),
          )
          if (result.ok) (result.value as { close(): void }).close()
        },
      ),
      RUNS,
    )
    expect(hub.subscribers()).toBe(0)
    await Promise.all(hubs.map((h) => h.close()))
  })
})

describe('hostile requests', () => {
  /** Sends raw bytes and returns the status line of the answer (or how the socket ended). */
  function raw(port: number, request: string | Buffer): Promise<string> {
    return new Promise((resolve) => {
      const socket = connect({ port, host: '127.0.0.1' })
      let answer = ''
      socket.setEncoding('latin1')
      socket.on('data', (chunk: string) => {
        answer += chunk
        if (answer.includes('\r\n')) {
          resolve(answer.slice(0, answer.indexOf('\r\n')))
          socket.destroy()
        }
      })
      socket.on('error', () => resolve(`error: ${answer}`))
      socket.on('close', () => resolve(answer || 'closed'))
      socket.end(request)
    })
  }

  test('a huge Last-Event-ID is refused by the server (431) and nothing starts', async () => {
    let started = 0
    const server = await nodeServer((req, res) => {
      started++
      void sendEventStream(req, res, ['a'], { registry: new StreamRegistry() })
    })
    const huge = 'x'.repeat(1024 * 1024)
    const status = await raw(
      server.port,
      `GET / HTTP/1.1\r\nHost: x\r\nLast-Event-ID: ${huge}\r\n\r\n`,
    )
    expect(status).toBe('HTTP/1.1 431 Request Header Fields Too Large')
    const query = await raw(server.port, `GET /?lastEventId=${huge} HTTP/1.1\r\nHost: x\r\n\r\n`)
    expect(query).toMatch(/^HTTP\/1\.1 (431|414|400)/)
    expect(started).toBe(0)
    // The server is fine afterwards.
    expect((await fetchText(server.url)).status).toBe(200)
  })

  test('malformed Last-Event-ID values reach ctx.lastEventId verbatim or are refused by HTTP', async () => {
    const seen: Array<string | undefined> = []
    const server = await nodeServer((req, res) => {
      void sendEventStream(
        req,
        res,
        (ctx) => {
          seen.push(ctx.lastEventId)
          return ['a']
        },
        { registry: new StreamRegistry() },
      )
    })
    const latin1 = Buffer.concat([
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nLast-Event-ID: '),
      Buffer.from([0xff, 0xfe, 0x80, 0x41]),
      Buffer.from('\r\n\r\n'),
    ])
    expect(await raw(server.port, latin1)).toBe('HTTP/1.1 200 OK')
    expect(
      await raw(server.port, 'GET / HTTP/1.1\r\nHost: x\r\nLast-Event-ID: a\0b\r\n\r\n'),
    ).toMatch(/^HTTP\/1\.1 400/)
    expect(
      await raw(
        server.port,
        `GET / HTTP/1.1\r\nHost: x\r\nLast-Event-ID: ${'9'.repeat(8000)}\r\n\r\n`,
      ),
    ).toBe('HTTP/1.1 200 OK')
    expect(
      await raw(
        server.port,
        'GET /?lastEventId=%0Adata:%20x&lastEventId=2 HTTP/1.1\r\nHost: x\r\n\r\n',
      ),
    ).toBe('HTTP/1.1 200 OK')
    expect(seen).toEqual(['\u00ff\u00fe\u0080A', '9'.repeat(8000), '\ndata: x'])
  })
})
