/**
 * A contract described in OpenAPI 3.2: the Media Type Object of a `text/event-stream` response
 * whose `itemSchema` has one branch per event. Pure and small (no schema library, no I/O): it
 * asks each schema for its own JSON Schema through Standard JSON Schema, or through a converter
 * the caller passes.
 *
 * [OAS 3.2 §4.14.4] An event is modelled as the object the `text/event-stream` parser makes of
 * it (`data`, `event`, `id` as strings, `retry` an integer); a `data` field holding JSON is
 * described with `contentMediaType: application/json` and `contentSchema`.
 *
 * @module
 */

import { describe, SseError } from '../errors.ts'
import { type AnyContract, checkContract } from './contract.ts'
import type { StandardJSONSchemaV1, StandardSchemaV1 } from './standard-schema.ts'

/** A JSON Schema (2020-12, the dialect of OpenAPI 3.1 and 3.2), as a plain object. */
export type JsonSchema = Record<string, unknown>

/** The OpenAPI 3.2 Media Type Object made by {@link eventStreamMediaType}. */
export interface EventStreamMediaType {
  /** Applied to each event of the stream on its own, as it is read. */
  itemSchema: JsonSchema
}

/** Options of {@link eventStreamMediaType}. */
export interface EventStreamMediaTypeOptions {
  /**
   * Turns one event's schema into JSON Schema, for a schema that does not implement Standard
   * JSON Schema itself (valibot's schemas: pass `(schema) => toJsonSchema(schema, { target:
   * 'draft-2020-12' })` from `@valibot/to-json-schema`, or wrap them in its
   * `toStandardJsonSchema`). Called with the schema and its event name; return JSON Schema
   * 2020-12 of the data *as sent* (the schema's output type).
   * @defaultValue each schema's own `~standard.jsonSchema.output({ target: 'draft-2020-12' })`
   */
  toJsonSchema?: ((schema: StandardSchemaV1, event: string) => object) | undefined
  /**
   * The prefix of the `$id` given to an event's data schema that refers to itself (a
   * recursive schema's `$ref: "#"`), so that the reference resolves to that schema and not to
   * the root of the OpenAPI document: `<id>:<event name>`. Give each stream of one document
   * its own when two of them share a recursive event name.
   * @defaultValue `"urn:oven-sse:events"`
   */
  id?: string | undefined
}

const OPTIONS = ['toJsonSchema', 'id']
const DEFAULT_ID = 'urn:oven-sse:events'

/**
 * [OAS 3.2 §4.14.4] The generic schema of one parsed `text/event-stream` event. Oven's contract
 * events always have a name and data, so both are required.
 */
function eventSchema(): JsonSchema {
  return {
    type: 'object',
    required: ['event', 'data'],
    properties: {
      event: { type: 'string' },
      data: { type: 'string' },
      id: { type: 'string' },
      retry: { type: 'integer', minimum: 0 },
    },
  }
}

function cannotDescribe(event: string, why: string, cause?: unknown): SseError {
  return new SseError(
    'ERR_SSE_INVALID_OPTION',
    `Cannot describe event "${event}" in JSON Schema: ${why}`,
    cause === undefined ? undefined : { cause },
  )
}

/** The JSON Schema of one event's data, from the schema itself or the caller's converter. */
function dataSchema(
  event: string,
  schema: StandardSchemaV1,
  convert: EventStreamMediaTypeOptions['toJsonSchema'],
): JsonSchema {
  let result: unknown
  try {
    if (convert !== undefined) {
      result = convert(schema, event)
    } else {
      const converter = (schema as unknown as Partial<StandardJSONSchemaV1>)['~standard']
        ?.jsonSchema
      if (typeof converter?.output !== 'function') {
        const vendor = schema['~standard'].vendor
        throw cannotDescribe(
          event,
          `its ${vendor} schema does not implement Standard JSON Schema (~standard.jsonSchema). ` +
            'Pass the toJsonSchema option (for valibot: toJsonSchema from ' +
            '@valibot/to-json-schema), or wrap the schema (valibot: toStandardJsonSchema).',
        )
      }
      result = converter.output({ target: 'draft-2020-12' })
    }
  } catch (error) {
    if (error instanceof SseError) throw error
    throw cannotDescribe(event, (error as Error)?.message ?? String(error), error)
  }
  if (typeof result !== 'object' || result === null || Array.isArray(result)) {
    throw cannotDescribe(event, `expected a JSON Schema object, received ${describe(result)}.`)
  }
  return result as JsonSchema
}

/** Whether `schema` holds a reference relative to its own root (`"#"`, `"#/$defs/..."`). */
function refersToItself(schema: JsonSchema): boolean {
  return /"\$(?:dynamic)?ref":"#/.test(JSON.stringify(schema))
}

/**
 * The OpenAPI 3.2 Media Type Object of a stream of `contract`'s events: put it under
 * `content['text/event-stream']` of the response. Its `itemSchema` is a `oneOf` with one
 * branch per event name: `event` is that name (`const`), and `data` is a string holding JSON
 * (`contentMediaType: application/json`) whose `contentSchema` is the JSON Schema of the
 * event's schema output, as made by the schema library itself.
 *
 * zod 4 and arktype schemas describe themselves (Standard JSON Schema); for valibot, wrap each
 * schema in `toStandardJsonSchema` or pass `toJsonSchema` (both from `@valibot/to-json-schema`).
 *
 * @param contract - from `defineContract`.
 * @param options - `toJsonSchema` for schemas that cannot describe themselves; `id`.
 * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` when a schema cannot be described (naming
 *   the event and why: no JSON Schema support, or a type JSON Schema cannot express), or for
 *   bad options.
 *
 * @example
 * ```ts
 * const document = {
 *   openapi: '3.2.0',
 *   info: { title: 'Jobs', version: '1.0.0' },
 *   paths: {
 *     '/jobs/{id}/events': {
 *       get: {
 *         responses: {
 *           '200': {
 *             description: 'The job progress, as server-sent events',
 *             content: { 'text/event-stream': eventStreamMediaType(jobEvents) },
 *           },
 *         },
 *       },
 *     },
 *   },
 * }
 * ```
 */
export function eventStreamMediaType(
  contract: AnyContract,
  options: EventStreamMediaTypeOptions = {},
): EventStreamMediaType {
  const { events } = checkContract(contract)
  if (typeof options !== 'object' || options === null) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Invalid options for eventStreamMediaType(): expected an object, received ${describe(options)}.`,
    )
  }
  for (const name of Object.keys(options)) {
    if (!OPTIONS.includes(name)) {
      throw new SseError(
        'ERR_SSE_INVALID_OPTION',
        `Unknown option "${name}" for eventStreamMediaType(); the options are: ${OPTIONS.join(', ')}.`,
      )
    }
  }
  const { toJsonSchema: convert, id = DEFAULT_ID } = options
  if (convert !== undefined && typeof convert !== 'function') {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Invalid option "toJsonSchema": expected a function (schema, event) => JSON Schema, ` +
        `received ${describe(convert)}.`,
    )
  }
  if (typeof id !== 'string' || !/^[a-z][a-z0-9+.-]*:/i.test(id)) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Invalid option "id": expected an absolute URI (such as "urn:my-api:events"), received ` +
        `${describe(id)}.`,
    )
  }
  const branches = Object.keys(events).map((event) => {
    // The document's dialect (OpenAPI's, JSON Schema 2020-12) applies, not the library's.
    const { $schema: _dialect, ...content } = dataSchema(event, events[event]!, convert)
    const contentSchema = refersToItself(content)
      ? { $id: `${id}:${encodeURIComponent(event)}`, ...content }
      : content
    return {
      properties: {
        event: { const: event },
        data: { contentMediaType: 'application/json', contentSchema },
      },
    }
  })
  return { itemSchema: { ...eventSchema(), oneOf: branches } }
}
