/**
 * Bad input to the client gets a clear error at once (naming the option, what was expected and
 * what was received); the backoff and `Retry-After` rules as pure functions; and the client's
 * module graph stays web-only (no `node:` import), so it bundles for browsers and Workers.
 */

import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, test } from 'vitest'
import { backoffDelay, retryAfterDelay } from '../../src/client/backoff.ts'
import { type ConnectOptions, connect } from '../../src/client.ts'

const refused = (options: unknown, url: unknown = 'http://127.0.0.1:1/') => {
  try {
    connect(url as string, options as ConnectOptions)
  } catch (error) {
    expect(error).toMatchObject({ code: 'ERR_SSE_INVALID_OPTION' })
    return (error as Error).message
  }
  throw new Error('expected connect() to throw')
}

describe('bad input', () => {
  test.each([
    [123, 'Invalid url: expected a string or a URL, received number 123.'],
    ['not a url', 'Invalid url: expected an absolute URL, received string "not a url".'],
    [
      'ftp://example.com/',
      'Invalid option "url": expected an http: or https: URL, received string "ftp://example.com/".',
    ],
  ])('url %j', (url, message) => {
    expect(refused({}, url)).toBe(message)
  })

  test.each([
    [
      { retryDelays: 5 },
      /^Unknown option "retryDelays" for connect\(\); the options are: method, body, /,
    ],
    [
      { method: 'GET POST' },
      /^Invalid option "method": expected an HTTP method name .*, received string "GET POST"\.$/,
    ],
    [
      { body: 'x' },
      /^Invalid option "method": expected a method that carries a body \(such as "POST"\) when "body" is given, received string "GET"\.$/,
    ],
    [
      { method: 'POST', body: new ReadableStream() },
      /^Invalid option "body": .*a ReadableStream can be read only once, received an instance of ReadableStream\.$/,
    ],
    [
      { method: 'POST', body: 42 },
      /^Invalid option "body": expected a string, Blob, .*, received number 42\.$/,
    ],
    [
      { headers: 'authorization: x' },
      /^Invalid option "headers": expected a Headers, .*received string "authorization: x"/,
    ],
    [
      { init: { signal: null } },
      /^Invalid option "init": expected fetch options without "signal" \(use the "signal" option of connect\(\)\)/,
    ],
    [
      { lastEventId: 'a\nb' },
      /^Invalid option "lastEventId": expected a string without CR, LF or NUL, received string "a\\nb"\.$/,
    ],
    [{ signal: {} }, /^Invalid option "signal": expected an AbortSignal, received an object\.$/],
    [
      { retryDelay: 0.5 },
      /^Invalid option "retryDelay": expected a whole number of milliseconds from 1 to 2147483647 \(did you mean 500 for 0\.5 s\?\), received number 0\.5\.$/,
    ],
    [
      { retryDelay: 5000, maxRetryDelay: 1000 },
      /^Invalid option "maxRetryDelay": expected a delay at least "retryDelay" \(5000\), received number 1000\.$/,
    ],
    [
      { jitter: 2 },
      /^Invalid option "jitter": expected a number from 0 to 1, received number 2\.$/,
    ],
    [
      { maxRetries: -1 },
      /^Invalid option "maxRetries": expected a whole number from 0, or Infinity, received number -1\.$/,
    ],
    // Seconds written where milliseconds belong: refused, with the likely intent.
    [
      { idleTimeout: 30 },
      /^Invalid option "idleTimeout": .* \(did you mean 30000 for 30 s\?\), received number 30\. .*shortDurations\(\)/,
    ],
    [
      { endEvents: 'oven-end' },
      /^Invalid option "endEvents": expected an array of event type names, received string "oven-end"\.$/,
    ],
    [
      { maxEventSize: 0 },
      /^Invalid option "maxEventSize": expected a whole number of characters from 1, received number 0\.$/,
    ],
    [
      { onEvent: 'log' },
      /^Invalid option "onEvent": expected a function, received string "log"\.$/,
    ],
    [
      { on: { update: true } },
      /^Invalid option "on\.update": expected a function, received boolean true\.$/,
    ],
    [{ fetch: 'fetch' }, /^Invalid option "fetch": expected a fetch function/],
  ])('%j', (options, message) => {
    expect(refused(options)).toMatch(message)
  })

  test('lastEventId can be read and set; a bad one is refused', async () => {
    const stream = connect('http://127.0.0.1:1/', { lastEventId: '7', maxRetries: 0 })
    expect(stream.lastEventId).toBe('7')
    stream.lastEventId = 'topic:42'
    expect(stream.lastEventId).toBe('topic:42')
    expect(() => {
      stream.lastEventId = 'a\rb'
    }).toThrow('Invalid option "lastEventId": expected a string without CR, LF or NUL')
    stream.close()
    expect(await stream.closed).toEqual({ reason: 'aborted', lastEventId: 'topic:42' })
  })

  test('an aborted signal closes the stream before any request; one iterator at a time', async () => {
    let requests = 0
    const stream = connect('http://127.0.0.1:1/', {
      signal: AbortSignal.abort(),
      fetch: async () => {
        requests++
        return new Response()
      },
    })
    expect(stream.state).toBe('closed')
    expect((await stream.closed).reason).toBe('aborted')
    expect(requests).toBe(0)
    stream[Symbol.asyncIterator]()
    expect(() => stream[Symbol.asyncIterator]()).toThrow('already being iterated')
  })
})

describe('backoff', () => {
  const settings = { initial: 1000, max: 30_000, jitter: 0.5 }
  test('doubles from the base, is capped, and jitter takes off up to its share', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, 1000, settings, 0))).toEqual([
      1000, 2000, 4000, 8000, 16_000, 30_000, 30_000,
    ])
    expect(backoffDelay(1, 1000, settings, 0.999999)).toBe(500)
    expect(backoffDelay(3, 1000, { ...settings, jitter: 0 }, 0.7)).toBe(4000)
    // Far past the cap the exponent stops growing: the result stays finite.
    expect(backoffDelay(5000, 1000, settings, 0)).toBe(30_000)
  })

  test('Retry-After: seconds or an HTTP date; anything else is ignored', () => {
    const now = Date.parse('2026-12-07T10:00:00Z')
    expect(retryAfterDelay('120', now)).toBe(120_000)
    expect(retryAfterDelay(' 0 ', now)).toBe(0)
    expect(retryAfterDelay('Mon, 07 Dec 2026 10:00:30 GMT', now)).toBe(30_000)
    expect(retryAfterDelay('Mon, 07 Dec 2026 09:00:00 GMT', now)).toBe(0)
    expect(retryAfterDelay('soon', now)).toBeUndefined()
    expect(retryAfterDelay('-5', now)).toBeUndefined()
    expect(retryAfterDelay(null, now)).toBeUndefined()
  })
})

test('the client imports no node: module, and from the server side only errors, utilities and the contract checks', () => {
  const src = fileURLToPath(new URL('../../src/', import.meta.url))
  const seen = new Set<string>()
  const bare = new Set<string>()
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    for (const match of readFileSync(file, 'utf8').matchAll(
      /^(?:import|export)[^'"]*from '([^']+)'/gm,
    )) {
      const target = match[1]!
      if (target.startsWith('.')) visit(resolve(dirname(file), target))
      else bare.add(target)
    }
  }
  visit(resolve(src, 'client.ts'))
  expect([...bare]).toEqual(['eventsource-parser'])
  const outside = [...seen]
    .map((file) => file.slice(src.length))
    .filter(
      (path) =>
        !/^(client\.ts|client\/|util\/|errors\.ts|contracts\/contract\.ts|contracts\/standard-schema\.ts)$|^(client|util)\//.test(
          path,
        ),
    )
  expect(outside).toEqual([])
})
