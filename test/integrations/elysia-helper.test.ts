/**
 * What `oven-sse/elysia` does with `set.headers`, in every shape Elysia gives it: a record (what
 * handlers and hooks write to), a record holding a list of cookies, and the `Headers` Elysia
 * turns it into when several cookies are set. The helper is web-standard, so these run in Node
 * against a context shaped as Elysia's; elysia.test.ts runs it in a real Elysia app on Bun.
 */

import { expect, test } from 'vitest'
import { sse } from '../../src/elysia.ts'
import { StreamRegistry } from '../../src/index.ts'
import { readEvents } from '../../src/testing.ts'

const registry = new StreamRegistry()

function context(headers: Record<string, string | number | string[]> | Headers) {
  return {
    request: new Request('http://localhost/events', { headers: { 'last-event-id': '7' } }),
    set: { headers: headers as Record<string, string | number> },
  }
}

test("a record: moved into the head under Oven's rules, and emptied", async () => {
  const ctx = context({
    'x-custom': 'elysia',
    'cache-control': 'private, max-age=7',
    'content-type': 'text/html',
    'content-length': 3,
    'transfer-encoding': 'chunked',
    'x-both': 'from set',
  })
  const response = await sse(
    ctx,
    ({ lastEventId }) => [{ id: '8', data: `after ${lastEventId}` }],
    { registry, headers: { 'X-Both': 'from options' } },
  )
  expect(ctx.set.headers).toEqual({})
  expect(response.headers.get('x-custom')).toBe('elysia')
  // A Cache-Control there replaces Oven's default; the options win over set.headers.
  expect(response.headers.get('cache-control')).toBe('private, max-age=7')
  expect(response.headers.get('x-both')).toBe('from options')
  // Framing stays Oven's.
  expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
  expect(response.headers.get('content-length')).toBeNull()
  expect(response.headers.get('transfer-encoding')).toBeNull()
  // The request came from the context: its Last-Event-ID reached the source.
  expect((await readEvents(response, { timeout: 5000 })).map((event) => event.data)).toEqual([
    'after 7',
  ])
})

test('a record holding a list of cookies: each one sent', async () => {
  const ctx = context({ 'set-cookie': ['a=1', 'b=2'] })
  const response = await sse(ctx, [], { registry })
  expect(ctx.set.headers).toEqual({})
  expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2'])
  await response.body?.cancel()
})

test('a Headers (Elysia makes one for several cookies): moved and emptied', async () => {
  const headers = new Headers([
    ['set-cookie', 'a=1'],
    ['set-cookie', 'b=2'],
    ['x-custom', 'elysia'],
  ])
  const response = await sse(context(headers), [], { registry })
  expect([...headers.keys()]).toEqual([])
  expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2'])
  expect(response.headers.get('x-custom')).toBe('elysia')
  await response.body?.cancel()
})

test("nothing in set.headers: Oven's own head", async () => {
  const ctx = context({})
  const response = await sse(ctx, [], { registry })
  expect([...response.headers.keys()].sort()).toEqual([
    'cache-control',
    'content-type',
    'x-accel-buffering',
  ])
  await response.body?.cancel()
})
