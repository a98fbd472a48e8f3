/** Type tests for detached runs: checked by `tsc --noEmit`, not run. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { expectTypeOf } from 'vitest'
import {
  EventSourceResponse,
  type RunHandle,
  type RunProducer,
  type RunState,
  Runs,
} from '../../src/index.ts'
import { sendEventStream } from '../../src/node.ts'

declare const req: IncomingMessage
declare const res: ServerResponse
const runs = new Runs({ ttl: 60_000, history: 100 })

// Producers: iterables of broadcast items, or a function of the abort signal.
void runs.start('a', ['text', { event: 'token', data: { n: 1 } }])
void runs.start('b', async function* (signal) {
  expectTypeOf(signal).toEqualTypeOf<AbortSignal>()
  yield 'x'
})
// @ts-expect-error a producer yields items, not numbers
const numbers: RunProducer = [1, 2]
void numbers
expectTypeOf(runs.start('c', [])).resolves.toEqualTypeOf<RunHandle>()
expectTypeOf<RunHandle['finished']>().resolves.toEqualTypeOf<'done' | 'failed' | 'stopped'>()

// Attach is content for both transports, with the stream context as its options.
new EventSourceResponse((ctx) => runs.attach('a', ctx))
void sendEventStream(req, res, (ctx) => runs.attach('a', ctx))

expectTypeOf(runs.stop('a')).resolves.toEqualTypeOf<boolean>()
expectTypeOf(runs.status('a')).resolves.toEqualTypeOf<RunState | undefined>()
// @ts-expect-error ttl is a number of ms
new Runs({ ttl: '1h' })
