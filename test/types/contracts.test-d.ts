/** Type tests for event contracts: checked by `tsc --noEmit`, not run. */
import type * as Spec from '@standard-schema/spec'
import { type } from 'arktype'
import * as v from 'valibot'
import { expectTypeOf } from 'vitest'
import { z } from 'zod'
import {
  type AnyContract,
  Broadcaster,
  type BroadcastItem,
  type Contract,
  type ContractData,
  type ContractEvent,
  type ContractInput,
  createChannel,
  defineContract,
  EventSourceResponse,
  type StandardJSONSchemaV1,
  type StandardSchemaV1,
  typedSource,
  validateEvent,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'

// The vendored interfaces are the spec's, member for member.
expectTypeOf<StandardSchemaV1<string, number>>().toEqualTypeOf<
  Spec.StandardSchemaV1<string, number>
>()
expectTypeOf<StandardSchemaV1.Result<number>>().toEqualTypeOf<
  Spec.StandardSchemaV1.Result<number>
>()
expectTypeOf<Spec.StandardJSONSchemaV1<string, number>>().toExtend<
  StandardJSONSchemaV1<string, number>
>()
expectTypeOf<StandardJSONSchemaV1<string, number>>().toExtend<
  Spec.StandardJSONSchemaV1<string, number>
>()

const jobEvents = defineContract({
  progress: z.object({ percent: z.number(), note: z.string().default('') }),
  done: v.object({ url: v.string() }),
  log: type({ line: 'string' }),
})

// Each library's schema infers its data type; `data` is the schema's output on the wire...
expectTypeOf<ContractData<typeof jobEvents, 'progress'>>().toEqualTypeOf<{
  percent: number
  note: string
}>()
expectTypeOf<ContractData<typeof jobEvents, 'done'>>().toEqualTypeOf<{ url: string }>()
expectTypeOf<ContractData<typeof jobEvents, 'log'>>().toEqualTypeOf<{ line: string }>()
// ...and its input where a producer gives it (the schema fills in the default).
expectTypeOf<
  Extract<ContractInput<typeof jobEvents>, { event: 'progress' }>['data']
>().toEqualTypeOf<{ percent: number; note?: string | undefined }>()

// ContractEvent is a union discriminated by `event`.
declare const received: ContractEvent<typeof jobEvents>
if (received.event === 'done') expectTypeOf(received.data).toEqualTypeOf<{ url: string }>()
expectTypeOf(received.event).toEqualTypeOf<'progress' | 'done' | 'log'>()
expectTypeOf(received.id).toEqualTypeOf<string | undefined>()

// validateEvent answers the typed event (await it: a promise for async schemas).
expectTypeOf(validateEvent(jobEvents, {})).toEqualTypeOf<
  ContractEvent<typeof jobEvents> | Promise<ContractEvent<typeof jobEvents>>
>()

// With validate: false the data is sent as given, so a producer must give the output type.
const trusted = defineContract({ progress: jobEvents.events.progress }, { validate: false })
expectTypeOf(trusted).toEqualTypeOf<
  Contract<{ progress: (typeof jobEvents.events)['progress'] }, false>
>()
expectTypeOf<ContractInput<typeof trusted>['data']>().toEqualTypeOf<{
  percent: number
  note: string
}>()

// A source: each yield is checked against the contract.
new EventSourceResponse(
  typedSource(jobEvents, async function* ({ signal }) {
    expectTypeOf(signal).toEqualTypeOf<AbortSignal>()
    yield { event: 'progress', data: { percent: 1 } }
    yield { event: 'done', data: { url: '/r' }, id: '7' }
    yield { event: 'log', data: { line: 'x' }, retry: 1000 }
  }),
)
typedSource(jobEvents, [{ event: 'done', data: { url: '/r' } }])
typedSource(jobEvents, async () => [{ event: 'done', data: { url: '/r' } }] as const)
declare const req: import('node:http').IncomingMessage
declare const res: import('node:http').ServerResponse
sendEventStream(
  req,
  res,
  typedSource(jobEvents, function* () {
    yield { event: 'done', data: { url: '/r' } }
  }),
)

// The error is reported at the argument (TypeScript checks a generator's yields against the
// contextual type as a whole), naming the yield that does not fit.
// @ts-expect-error an event name the contract does not declare
typedSource(jobEvents, async function* () {
  yield { event: 'progres', data: { percent: 1 } }
})
// @ts-expect-error data of the wrong type for its event
typedSource(jobEvents, async function* () {
  yield { event: 'progress', data: { percent: '1' } }
})
// @ts-expect-error another event's data
typedSource(jobEvents, async function* () {
  yield { event: 'done', data: { line: 'x' } }
})
// @ts-expect-error a plain string is not a contract event
typedSource(jobEvents, async function* () {
  yield 'hello'
})
// @ts-expect-error not a contract
typedSource({ events: {} }, [])

// A broadcaster bound to a contract: publish takes its events only.
const hub = new Broadcaster({ contract: jobEvents })
expectTypeOf(hub).toEqualTypeOf<Broadcaster<typeof jobEvents>>()
hub.publish('job:1', { event: 'progress', data: { percent: 50 } })
hub.publish('job:1', { event: 'done', data: { url: '/r' }, retry: 500 })
// @ts-expect-error an event name the contract does not declare
hub.publish('job:1', { event: 'nope', data: {} })
// @ts-expect-error data of the wrong type
hub.publish('job:1', { event: 'log', data: { line: 1 } })
// @ts-expect-error the broadcaster assigns ids
hub.publish('job:1', { event: 'done', data: { url: '/r' }, id: '1' })
// @ts-expect-error a bound broadcaster takes no untyped text
hub.publish('job:1', 'text')
// The untyped broadcaster is unchanged.
const plain = new Broadcaster()
expectTypeOf(plain).toEqualTypeOf<Broadcaster>()
expectTypeOf(plain.publish).parameter(1).toEqualTypeOf<BroadcastItem>()
plain.publish('news', 'text')
plain.publish('news', { event: 'anything', data: 1 })
const untypedWithOptions = new Broadcaster({ history: 10 })
expectTypeOf(untypedWithOptions).toEqualTypeOf<Broadcaster>()
// A typed broadcaster is not an untyped one (that one's publish takes anything, this one's
// does not), but it is a Broadcaster<AnyContract>, and subscribes as any other.
// @ts-expect-error publish would then accept untyped items
const asPlain: Broadcaster = hub
const anyHub: Broadcaster<AnyContract> = hub
void asPlain
void anyHub
new EventSourceResponse((ctx) => hub.subscribe('job:1', ctx))

// A channel bound to a contract.
const channel = createChannel(8, { contract: jobEvents })
channel.send({ event: 'progress', data: { percent: 3 } })
// @ts-expect-error data of the wrong type
channel.send({ event: 'progress', data: { percent: 'x' } })
// @ts-expect-error an unknown event
channel.send({ event: 'other', data: {} })
new EventSourceResponse(channel)
// The untyped channel is unchanged.
expectTypeOf(createChannel<string>(1).send).parameter(0).toEqualTypeOf<string>()
// @ts-expect-error the contract option is required in the options object
createChannel(1, {})
