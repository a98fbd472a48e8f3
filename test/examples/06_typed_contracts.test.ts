/**
 * 06_typed_contracts: the served OpenAPI 3.2 document validates with two real validators, and
 * the typed stream it describes sends exactly what the document says: every event validates
 * against its `itemSchema`, every event's JSON data against its branch's `contentSchema`; a
 * client resuming with Last-Event-ID gets the rest, and nothing twice.
 */

import { registerSchema, unregisterSchema, validate } from '@hyperjump/json-schema/openapi-3-2'
import { Validator } from '@seriousme/openapi-schema-validator'
import { afterEach, expect, test, vi } from 'vitest'
import { readEvents, type SseEvent } from '../../src/testing.ts'
import { EXAMPLE_TEST_TIMEOUT, runExample, stopAllExamples } from './run-example.ts'

afterEach(stopAllExamples)
vi.setConfig({ testTimeout: EXAMPLE_TEST_TIMEOUT })

type Branch = {
  properties: { event: { const: string }; data: { contentSchema: Record<string, unknown> } }
}

const DIALECT = 'https://spec.openapis.org/oas/3.2/dialect'

/** Checks each event against the media type's schemas, as a client library would. */
async function conforms(mediaType: { itemSchema: { oneOf: Branch[] } }, events: SseEvent[]) {
  const base = `https://oven-sse.test/06/${Math.random()}`
  const uris = [base]
  registerSchema(mediaType.itemSchema as never, base, DIALECT)
  for (const branch of mediaType.itemSchema.oneOf) {
    const uri = `${base}/${branch.properties.event.const}`
    registerSchema(branch.properties.data.contentSchema as never, uri, DIALECT)
    uris.push(uri)
  }
  try {
    const verdicts: string[] = []
    for (const { event, data, id } of events) {
      const item = await validate(base, { event, data, ...(id ? { id } : {}) } as never)
      const content = await validate(`${base}/${event}`, JSON.parse(data))
      if (!item.valid || !content.valid) verdicts.push(`event ${id} (${event}): ${data}`)
    }
    return verdicts
  } finally {
    for (const uri of uris) unregisterSchema(uri)
  }
}

test('06_typed_contracts: serves a valid OpenAPI 3.2 document and a stream that follows it', async () => {
  const { url } = await runExample('06_typed_contracts.ts', { env: { TICK_MS: '10' } })

  const response = await fetch(`${url}/openapi.json`)
  expect(response.status).toBe(200)
  const document = (await response.json()) as {
    paths: Record<
      string,
      { get: { responses: Record<string, { content: Record<string, unknown> }> } }
    >
  }
  const hyperjump = await validate(
    'https://spec.openapis.org/oas/3.2/schema-base',
    document as never,
  )
  expect(hyperjump.valid).toBe(true)
  const validator = new Validator()
  expect(await validator.validate(structuredClone(document) as never)).toEqual({ valid: true })
  expect(validator.version).toBe('3.2')
  const mediaType = document.paths['/jobs/{id}/events']!.get.responses['200']!.content[
    'text/event-stream'
  ] as { itemSchema: { oneOf: Branch[] } }
  expect(mediaType.itemSchema.oneOf.map((branch) => branch.properties.event.const)).toEqual([
    'stage',
    'progress',
    'log',
    'done',
  ])

  const events = await readEvents(`${url}/jobs/report-7/events`)
  expect(events.map((event) => event.id)).toEqual(
    Array.from({ length: 19 }, (_, i) => String(i + 1)),
  )
  expect(events.slice(0, 6).map(({ event, data }) => ({ event, data: JSON.parse(data) }))).toEqual([
    { event: 'stage', data: { name: 'queued', index: 0 } },
    { event: 'progress', data: { percent: 25 } },
    { event: 'progress', data: { percent: 50 } },
    { event: 'progress', data: { percent: 75 } },
    { event: 'progress', data: { percent: 100 } },
    { event: 'log', data: 'report-7: queued finished' },
  ])
  const done = events.at(-1)!
  expect(done.event).toBe('done')
  expect(JSON.parse(done.data)).toMatchObject({ url: '/reports/report-7.pdf' })
  expect(await conforms(mediaType, events)).toEqual([])

  // A client that had event 10 resumes after it: the rest, nothing twice.
  const rest = await readEvents(`${url}/jobs/report-7/events`, { lastEventId: '10' })
  expect(rest.map((event) => event.id)).toEqual(Array.from({ length: 9 }, (_, i) => String(i + 11)))
  // The same events as the first time (all but `done`, whose `seconds` is the job's own).
  const strip = ({ event, data }: SseEvent) => ({ event, data })
  expect(rest.slice(0, -1).map(strip)).toEqual(events.slice(10, 18).map(strip))
  expect(rest.at(-1)?.event).toBe('done')
})
