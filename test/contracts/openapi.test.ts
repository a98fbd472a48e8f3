/**
 * A contract described in OpenAPI 3.2, with each schema library: the document validates with
 * two real OpenAPI 3.2 validators (@hyperjump/json-schema's `openapi-3-2` dialect, which also
 * checks every JSON Schema in it, and @seriousme/openapi-schema-validator), and the events a
 * real stream sends validate against the description: each parsed event against `itemSchema`,
 * its JSON data against the branch's `contentSchema`.
 */

import {
  registerSchema,
  unregisterSchema,
  validate as validateOpenApi,
} from '@hyperjump/json-schema/openapi-3-2'
import { Validator } from '@seriousme/openapi-schema-validator'
import { toJsonSchema, toStandardJsonSchema } from '@valibot/to-json-schema'
import { type } from 'arktype'
import * as v from 'valibot'
import { afterEach, describe, expect, test } from 'vitest'
import { z } from 'zod'
import {
  type AnyContract,
  defineContract,
  EventSourceResponse,
  type EventStreamMediaTypeOptions,
  eventStreamMediaType,
  type JsonSchema,
  type SseError,
  typedSource,
} from '../../src/index.ts'
import { readEvents } from '../../src/testing.ts'
import { closeAllServers, webServer } from '../helpers/servers.ts'
import { libraries } from './schemas.ts'

afterEach(closeAllServers)

/** An OpenAPI 3.2 document with one streaming operation described from `contract`. */
function documentFor(contract: AnyContract, options?: EventStreamMediaTypeOptions) {
  return {
    openapi: '3.2.0',
    info: { title: 'Jobs', version: '1.0.0' },
    paths: {
      '/jobs/{id}/events': {
        get: {
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': {
              description: 'The progress of a job, as server-sent events',
              content: { 'text/event-stream': eventStreamMediaType(contract, options) },
            },
          },
        },
      },
    },
  }
}

/** Validates `document` with both validators; answers their verdicts and errors. */
async function check(document: object) {
  const hyperjump = await validateOpenApi(
    'https://spec.openapis.org/oas/3.2/schema-base',
    document as never,
  )
  const seriousme = new Validator()
  const result = await seriousme.validate(structuredClone(document) as never)
  return {
    hyperjump: hyperjump.valid,
    seriousme: result.valid,
    version: seriousme.version,
    errors: result.errors,
  }
}

/** Registers `schema` at `uri` in the dialect of OpenAPI 3.2's Schema Objects. */
function register(schema: JsonSchema, uri: string): void {
  registerSchema(schema as never, uri, 'https://spec.openapis.org/oas/3.2/dialect')
}

type Branch = { properties: { event: { const: string }; data: { contentSchema: JsonSchema } } }

const valibotWays: Array<{
  name: string
  contract: AnyContract
  options?: EventStreamMediaTypeOptions
}> = [
  {
    name: 'valibot through toStandardJsonSchema',
    contract: defineContract({
      progress: toStandardJsonSchema(
        v.object({
          percent: v.pipe(v.number(), v.minValue(0), v.maxValue(100)),
          note: v.optional(v.string(), ''),
        }),
      ),
      message: toStandardJsonSchema(v.string()),
      done: toStandardJsonSchema(v.object({ url: v.string() })),
    }),
  },
  {
    name: 'valibot through the toJsonSchema option',
    contract: libraries.find((library) => library.name === 'valibot')!.contract,
    options: {
      toJsonSchema: (schema) => toJsonSchema(schema as never, { target: 'draft-2020-12' }),
    },
  },
]
const described = [
  ...libraries.filter((library) => library.name !== 'valibot'),
  ...valibotWays,
] as Array<{ name: string; contract: AnyContract; options?: EventStreamMediaTypeOptions }>

describe.each(described)(
  'the OpenAPI 3.2 description of a $name contract',
  ({ contract, options }) => {
    test('is a valid OpenAPI 3.2 document for both validators', async () => {
      const document = documentFor(contract, options)
      expect(await check(document)).toEqual({
        hyperjump: true,
        seriousme: true,
        version: '3.2',
        errors: undefined,
      })
    })

    test('has one branch per event: its name as a const, its data as JSON content', () => {
      const { itemSchema } = eventStreamMediaType(contract, options)
      expect(itemSchema).toMatchObject({
        type: 'object',
        required: ['event', 'data'],
        properties: {
          event: { type: 'string' },
          data: { type: 'string' },
          id: { type: 'string' },
          retry: { type: 'integer', minimum: 0 },
        },
      })
      const branches = itemSchema.oneOf as Branch[]
      expect(branches.map((branch) => branch.properties.event)).toEqual([
        { const: 'progress' },
        { const: 'message' },
        { const: 'done' },
      ])
      for (const branch of branches) {
        expect(branch.properties.data).toMatchObject({ contentMediaType: 'application/json' })
        expect(branch.properties.data.contentSchema).not.toHaveProperty('$schema')
      }
      expect(branches[0]!.properties.data.contentSchema).toMatchObject({
        type: 'object',
        properties: {
          percent: { type: 'number', minimum: 0, maximum: 100 },
          note: { type: 'string' },
        },
      })
      expect(branches[1]!.properties.data.contentSchema).toEqual({ type: 'string' })
    })

    test('describes what a real stream sends: every event and its data validate', async () => {
      const source = typedSource(contract as (typeof libraries)[0]['contract'], [
        { event: 'progress', data: { percent: 50 }, id: '1' },
        { event: 'message', data: 'line one\nline two' },
        { event: 'done', data: { url: '/report.pdf' }, retry: 1000 },
      ])
      const server = await webServer((request) => new EventSourceResponse(source, { request }))
      const events = await readEvents(server.url)
      expect(events).toHaveLength(3)
      const { itemSchema } = eventStreamMediaType(contract, options)
      const branches = itemSchema.oneOf as Branch[]
      const uri = `https://oven-sse.test/item/${Math.random()}`
      register(itemSchema, uri)
      try {
        for (const { event, data, id } of events) {
          // [OAS 3.2 §4.14.4] An event as the parser makes it: strings, no empty fields.
          const item = { event, data, ...(id === undefined ? {} : { id }) }
          expect((await validateOpenApi(uri, item as never)).valid).toBe(true)
          const branch = branches.find((candidate) => candidate.properties.event.const === event)!
          const dataUri = `${uri}/${event}`
          register(branch.properties.data.contentSchema, dataUri)
          try {
            expect((await validateOpenApi(dataUri, JSON.parse(data))).valid).toBe(true)
            // And a value of the wrong shape does not: the schema is not vacuous.
            expect((await validateOpenApi(dataUri, { percent: 'half', url: 7 })).valid).toBe(false)
          } finally {
            unregisterSchema(dataUri)
          }
        }
        expect((await validateOpenApi(uri, { event: 'unknown', data: '{}' })).valid).toBe(false)
      } finally {
        unregisterSchema(uri)
      }
    })
  },
)

describe('eventStreamMediaType', () => {
  test('a recursive schema gets its own $id, so that its "#" is itself; the document validates', async () => {
    type Node = { name: string; children: Node[] }
    const node: z.ZodType<Node> = z.object({
      name: z.string(),
      get children() {
        return z.array(node)
      },
    })
    const contract = defineContract({ tree: node, other: z.number() })
    const { itemSchema } = eventStreamMediaType(contract, { id: 'urn:jobs:events' })
    const [tree, other] = itemSchema.oneOf as Branch[]
    expect(tree!.properties.data.contentSchema).toMatchObject({
      $id: 'urn:jobs:events:tree',
      properties: { children: { items: { $ref: '#' } } },
    })
    expect(other!.properties.data.contentSchema).not.toHaveProperty('$id')
    expect(await check(documentFor(contract))).toMatchObject({ hyperjump: true, seriousme: true })
  })

  test('a schema that cannot describe itself: a clear error naming the event and the way out', () => {
    const valibot = libraries.find((library) => library.name === 'valibot')!.contract
    expect(() => eventStreamMediaType(valibot)).toThrow(
      'Cannot describe event "progress" in JSON Schema: its valibot schema does not implement ' +
        'Standard JSON Schema (~standard.jsonSchema). Pass the toJsonSchema option (for valibot: ' +
        'toJsonSchema from @valibot/to-json-schema), or wrap the schema (valibot: ' +
        'toStandardJsonSchema).',
    )
  })

  test("a type JSON Schema cannot express: the library's own error, with the event", () => {
    let error: SseError | undefined
    try {
      eventStreamMediaType(defineContract({ at: z.object({ when: z.date() }) }))
    } catch (caught) {
      error = caught as SseError
    }
    expect(error?.code).toBe('ERR_SSE_INVALID_OPTION')
    expect(error?.message).toBe(
      'Cannot describe event "at" in JSON Schema: Date cannot be represented in JSON Schema',
    )
    expect(error?.cause).toBeInstanceOf(Error)
  })

  test('bad options and a converter that answers nonsense are refused, naming them', () => {
    const contract = defineContract({ n: type('number') })
    expect(() => eventStreamMediaType(contract, { toJSONSchema: () => ({}) } as never)).toThrow(
      'Unknown option "toJSONSchema" for eventStreamMediaType(); the options are: toJsonSchema, id.',
    )
    expect(() => eventStreamMediaType(contract, { toJsonSchema: 'zod' } as never)).toThrow(
      'Invalid option "toJsonSchema": expected a function (schema, event) => JSON Schema, ' +
        'received string "zod".',
    )
    expect(() => eventStreamMediaType(contract, { id: 'events' })).toThrow(
      'Invalid option "id": expected an absolute URI (such as "urn:my-api:events"), received ' +
        'string "events".',
    )
    expect(() => eventStreamMediaType(contract, { toJsonSchema: () => 'string' as never })).toThrow(
      'Cannot describe event "n" in JSON Schema: expected a JSON Schema object, received string ' +
        '"string".',
    )
    expect(() => eventStreamMediaType({} as never)).toThrow(
      'Invalid option "contract": expected a contract made by defineContract(), received an object.',
    )
  })
})
