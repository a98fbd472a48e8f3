/**
 * Event contracts: a stream's events declared once, event name → Standard Schema of its data,
 * so that the producer is type-checked, the data is validated before it reaches the wire, and
 * the same declaration describes the stream in OpenAPI (`openapi.ts`) and types a client.
 *
 * Invariants:
 * - Oven depends on no schema library: a schema is anything with a Standard Schema `~standard`
 *   property (zod 4, valibot, arktype, ...), read through the interfaces in
 *   `standard-schema.ts`.
 * - A contract event's data always crosses the wire as JSON text, whatever the stream's or
 *   broadcaster's `serialize` option says (a string is sent as `"text"`, quoted), so a client
 *   reads every event with `JSON.parse`, as the OpenAPI description promises.
 * - With `validate: true` (the default) the wire carries the schema's *output* (defaults filled
 *   in, transforms applied); with `validate: false` it carries the data as given, and the types
 *   ask the producer for the output type.
 *
 * @module
 */

import { describe, invalidOption, SseError } from '../errors.ts'
import type { StandardSchemaV1 } from './standard-schema.ts'

/** What a contract declares: event name → Standard Schema of that event's data. */
export type ContractEvents = { readonly [event: string]: StandardSchemaV1 }

/** Options of {@link defineContract}. */
export interface ContractOptions<Validate extends boolean = boolean> {
  /**
   * Validate each event's data with its schema before it is sent (or published). `false` keeps
   * the schemas for the types and the OpenAPI description only: no per-event cost beyond
   * checking the event name and serializing the data.
   * @defaultValue `true`
   */
  validate?: Validate | undefined
}

/**
 * A stream's declared events, from {@link defineContract}. Bind it to a source
 * (`typedSource`), a `Broadcaster` (`contract` option) or a channel (`createChannel(n, {
 * contract })`), and describe it with `eventStreamMediaType`.
 */
export interface Contract<
  Events extends ContractEvents = ContractEvents,
  Validate extends boolean = boolean,
> {
  /** Event name → schema of its data (a frozen copy of what was declared). */
  readonly events: Events
  /** Whether data is validated at run time; see {@link ContractOptions.validate}. */
  readonly validate: Validate
}

/** Any contract. */
// biome-ignore lint/suspicious/noExplicitAny: a contract of any events, validated or not
export type AnyContract = Contract<any, boolean>

/** The event names of contract `C`. */
export type ContractEventName<C extends AnyContract> = Extract<keyof C['events'], string>

/** What event `K` of contract `C` carries: its schema's output type (what a client receives). */
export type ContractData<
  C extends AnyContract,
  K extends ContractEventName<C>,
> = StandardSchemaV1.InferOutput<C['events'][K]>

/**
 * What a producer gives as event `K`'s data: the schema's input type when the contract
 * validates (the schema turns it into the output: defaults, transforms), the output type when
 * it does not (the data is sent as given).
 */
export type ContractInputData<
  C extends AnyContract,
  K extends ContractEventName<C>,
> = C['validate'] extends false
  ? StandardSchemaV1.InferOutput<C['events'][K]>
  : StandardSchemaV1.InferInput<C['events'][K]>

/**
 * One event of contract `C` as it is sent and received: a union with one member per event
 * name, so that narrowing on `event` types `data`.
 */
export type ContractEvent<C extends AnyContract> = {
  [K in ContractEventName<C>]: {
    event: K
    data: ContractData<C, K>
    id?: string | undefined
    retry?: number | undefined
  }
}[ContractEventName<C>]

/** One event of contract `C` as a producer yields or sends it (see {@link ContractInputData}). */
export type ContractInput<C extends AnyContract> = {
  [K in ContractEventName<C>]: {
    event: K
    data: ContractInputData<C, K>
    id?: string | undefined
    retry?: number | undefined
  }
}[ContractEventName<C>]

/** One event of contract `C` as a bound `Broadcaster` publishes it: no `id` (it assigns ids). */
export type ContractBroadcastItem<C extends AnyContract> = {
  [K in ContractEventName<C>]: {
    event: K
    data: ContractInputData<C, K>
    retry?: number | undefined
  }
}[ContractEventName<C>]

// A registered symbol, so two installed copies of Oven recognise each other's contracts.
const CONTRACT_BRAND = Symbol.for('oven-sse.Contract')
const OPTIONS = ['validate']
const EVENT_KEYS = 'event, data, id and retry'

/** Whether `value` implements Standard Schema v1: a `~standard` with `validate`. */
function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false
  const props = (value as Partial<StandardSchemaV1>)['~standard']
  return (
    typeof props === 'object' &&
    props !== null &&
    props.version === 1 &&
    typeof props.validate === 'function'
  )
}

function invalidContract(message: string): SseError {
  return new SseError('ERR_SSE_INVALID_OPTION', `Invalid contract: ${message}`)
}

/**
 * Declares a stream's events: event name → Standard Schema of that event's data, from any
 * library that implements Standard Schema (zod 4, valibot, arktype). Oven depends on none of
 * them.
 *
 * @param events - event name → schema. A name is a non-empty single line (it goes out as the
 *   `event:` field).
 * @param options - `validate` (default `true`): `false` keeps the schemas for types and
 *   OpenAPI only.
 * @returns a frozen contract to bind to a source, a `Broadcaster` or a channel.
 * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` for a value that is not a Standard Schema,
 *   a bad event name or a bad option.
 *
 * @example
 * ```ts
 * import { z } from 'zod'
 * import { defineContract } from 'oven-sse'
 *
 * export const jobEvents = defineContract({
 *   progress: z.object({ percent: z.number().min(0).max(100) }),
 *   done: z.object({ url: z.string().url() }),
 * })
 * ```
 */
export function defineContract<Events extends ContractEvents, Validate extends boolean = true>(
  events: Events,
  options?: ContractOptions<Validate>,
): Contract<Events, Validate> {
  if (typeof events !== 'object' || events === null || Array.isArray(events)) {
    throw invalidContract(
      `expected an object mapping event names to schemas, received ${describe(events)}.`,
    )
  }
  let validate = true
  if (options !== undefined) {
    checkOptionNamesOf(options)
    if (options.validate !== undefined) {
      if (typeof options.validate !== 'boolean') {
        invalidOption('validate', 'a boolean', options.validate)
      }
      validate = options.validate
    }
  }
  // A copy without a prototype: a name such as "toString" or "__proto__" is never found by
  // accident, and changing the object given here later changes nothing.
  const schemas: Record<string, StandardSchemaV1> = Object.create(null)
  const names = Object.keys(events)
  if (names.length === 0) {
    throw invalidContract('expected at least one event, received an empty object.')
  }
  for (const name of names) {
    if (name === '' || name.includes('\n') || name.includes('\r') || !name.isWellFormed()) {
      throw invalidContract(
        `expected event names that are non-empty single lines of well-formed text, received ` +
          `${describe(name)}.`,
      )
    }
    const schema: unknown = events[name]
    if (!isStandardSchema(schema)) {
      throw invalidContract(
        `event "${name}": expected a Standard Schema (a schema of zod 4, valibot, arktype or ` +
          `another library with a "~standard" property, version 1, with validate()), received ` +
          `${describe(schema)}.`,
      )
    }
    schemas[name] = schema
  }
  const contract = { events: Object.freeze(schemas), validate }
  Object.defineProperty(contract, CONTRACT_BRAND, { value: true })
  return Object.freeze(contract) as unknown as Contract<Events, Validate>
}

function checkOptionNamesOf(options: unknown): asserts options is ContractOptions {
  if (typeof options !== 'object' || options === null) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Invalid options for defineContract(): expected an object, received ${describe(options)}.`,
    )
  }
  for (const name of Object.keys(options)) {
    if (!OPTIONS.includes(name)) {
      throw new SseError(
        'ERR_SSE_INVALID_OPTION',
        `Unknown option "${name}" for defineContract(); the options are: ${OPTIONS.join(', ')}.`,
      )
    }
  }
}

/** Whether `value` is a contract made by {@link defineContract} (of any installed copy). */
export function isContract(value: unknown): value is AnyContract {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[CONTRACT_BRAND] === true
  )
}

/**
 * Checks the `contract` option of `owner` and returns it.
 *
 * @internal
 */
export function checkContract(value: unknown): AnyContract {
  if (!isContract(value)) {
    invalidOption('contract', 'a contract made by defineContract()', value)
  }
  return value
}

/** The event names of `contract`, quoted, for an error message. */
function listNames(contract: AnyContract): string {
  return Object.keys(contract.events)
    .map((name) => JSON.stringify(name))
    .join(', ')
}

const MAX_ISSUES_SHOWN = 10

/** One issue as `at a.b[0]: message`. */
function formatIssue(issue: StandardSchemaV1.Issue): string {
  let path = ''
  for (const segment of issue.path ?? []) {
    const key = typeof segment === 'object' && segment !== null ? segment.key : segment
    path +=
      typeof key === 'number'
        ? `[${key}]`
        : typeof key === 'symbol'
          ? `[${key.toString()}]`
          : path === ''
            ? key
            : `.${key}`
  }
  return path === '' ? issue.message : `at ${path}: ${issue.message}`
}

function invalidData(
  name: string,
  schema: StandardSchemaV1,
  failure: StandardSchemaV1.FailureResult,
): SseError {
  const { issues } = failure
  const shown = issues.slice(0, MAX_ISSUES_SHOWN).map(formatIssue).join('; ')
  const more =
    issues.length > MAX_ISSUES_SHOWN ? `; and ${issues.length - MAX_ISSUES_SHOWN} more` : ''
  const count = issues.length === 1 ? '1 issue' : `${issues.length} issues`
  return new SseError(
    'ERR_SSE_INVALID_DATA',
    `Invalid data for event "${name}": its ${schema['~standard'].vendor} schema found ${count}: ` +
      `${shown}${more}.`,
    // The schema's own result, so `error.cause.issues` is its issue list as it made it.
    { cause: failure },
  )
}

/** The result of a schema's `validate`, turned into the checked event or an error. */
function settle(
  name: string,
  schema: StandardSchemaV1,
  result: StandardSchemaV1.Result<unknown>,
  id: unknown,
  retry: unknown,
): CheckedEvent {
  if (typeof result !== 'object' || result === null) {
    throw new SseError(
      'ERR_SSE_INVALID_DATA',
      `Invalid data for event "${name}": its schema's validate() returned ${describe(result)}; ` +
        'expected a Standard Schema result ({ value } or { issues }).',
    )
  }
  if (result.issues) throw invalidData(name, schema, result)
  return { event: name, data: result.value, id, retry }
}

/** An event whose name is in its contract and whose data passed its schema. */
interface CheckedEvent {
  event: string
  data: unknown
  id: unknown
  retry: unknown
}

const isOwn = Object.prototype.hasOwnProperty

/**
 * Whether an async schema answered: a promise (or a thenable, from another realm).
 *
 * @internal
 */
export function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

/**
 * Checks `item` against `contract`: the shape and the event name at once, then the data through
 * the schema (when the contract validates). Answers synchronously for a synchronous schema, so
 * a bound stream pays no promise per event.
 */
function check(contract: AnyContract, item: unknown): CheckedEvent | Promise<CheckedEvent> {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    throw new SseError(
      'ERR_SSE_INVALID_EVENT',
      `Invalid event: expected an object { event, data } whose event is one of ` +
        `${listNames(contract)}, received ${describe(item)}.`,
    )
  }
  for (const key in item) {
    if (
      isOwn.call(item, key) &&
      key !== 'event' &&
      key !== 'data' &&
      key !== 'id' &&
      key !== 'retry'
    ) {
      throw new SseError(
        'ERR_SSE_INVALID_EVENT',
        `Invalid event: unknown key "${key}"; a contract event may only have ${EVENT_KEYS}.`,
      )
    }
  }
  const { event: name, data, id, retry } = item as Record<string, unknown>
  if (typeof name !== 'string') {
    const received = isPromise(item) ? describe(item) : `an object whose event is ${describe(name)}`
    throw new SseError(
      'ERR_SSE_INVALID_EVENT',
      `Invalid event: expected an object { event, data } whose event is one of ` +
        `${listNames(contract)}, received ${received}.`,
    )
  }
  const schema = contract.events[name]
  if (schema === undefined) {
    throw new SseError(
      'ERR_SSE_INVALID_EVENT',
      `Invalid event ${JSON.stringify(name)}: not in the contract; expected one of ` +
        `${listNames(contract)}.`,
    )
  }
  if (!contract.validate) return { event: name, data, id, retry }
  const result = schema['~standard'].validate(data)
  if (isPromise(result)) {
    return result.then((settled) => settle(name, schema, settled, id, retry))
  }
  return settle(name, schema, result, id, retry)
}

/**
 * Validates one event against a contract: its name must be one the contract declares, and
 * (unless the contract was made with `validate: false`) its data must pass that event's schema.
 * Synchronous for a synchronous schema, a promise for an async one: `await` it either way.
 *
 * @param contract - from {@link defineContract}.
 * @param item - `{ event, data, id?, retry? }`.
 * @returns the event with the schema's output as `data`.
 * @throws {@link SseError} `ERR_SSE_INVALID_EVENT` for an event name not in the contract or a
 *   value that is not an event object; `ERR_SSE_INVALID_DATA` for data the schema rejects, its
 *   message listing the schema's issues and its `cause` the schema's own result (`{ issues }`).
 *
 * @example
 * ```ts
 * const checked = await validateEvent(jobEvents, { event: 'progress', data: { percent: 50 } })
 * ```
 */
export function validateEvent<C extends AnyContract>(
  contract: C,
  item: unknown,
): ContractEvent<C> | Promise<ContractEvent<C>> {
  const checked = check(checkContract(contract), item)
  return checked as ContractEvent<C> | Promise<ContractEvent<C>>
}

/** A contract event ready for the encoder: `data` is JSON text. */
export interface WireEvent {
  event: string
  data: string
  id: string | undefined
  retry: number | undefined
}

/** Serializes a checked event's data as JSON: the form every contract event takes on the wire. */
function toWire(checked: CheckedEvent): WireEvent {
  let text: string | undefined
  try {
    text = JSON.stringify(checked.data)
  } catch (cause) {
    throw new SseError(
      'ERR_SSE_SERIALIZE',
      `Could not serialize the data of event "${checked.event}" as JSON: ` +
        `${(cause as Error)?.message ?? cause}`,
      { cause },
    )
  }
  if (text === undefined) {
    throw new SseError(
      'ERR_SSE_INVALID_DATA',
      `Invalid data for event "${checked.event}": expected a value JSON can carry, received ` +
        `${describe(checked.data)}.`,
    )
  }
  // The encoder checks `id` and `retry` (a bad one throws there, before anything is sent).
  return {
    event: checked.event,
    data: text,
    id: checked.id as string | undefined,
    retry: checked.retry as number | undefined,
  }
}

/**
 * Checks `item` against `contract` and turns it into the event the encoder sends (data as JSON
 * text): what every binding (source, broadcaster, channel) calls per event.
 *
 * @internal
 */
export function toWireEvent(contract: AnyContract, item: unknown): WireEvent | Promise<WireEvent> {
  const checked = check(contract, item)
  return isPromise(checked) ? checked.then(toWire) : toWire(checked)
}
