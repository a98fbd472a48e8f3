/**
 * Type tests for `oven-sse/nest`. Checked by `tsc --noEmit -p tsconfig.json` (not run by
 * vitest): an assertion that fails, or a `@ts-expect-error` that no longer errors, fails the
 * type check.
 */

import type { IncomingMessage } from 'node:http'
import { Controller, type MessageEvent, RequestMethod } from '@nestjs/common'
import { interval, map, type Observable } from 'rxjs'
import { expectTypeOf } from 'vitest'
import type { StreamContext } from '../../src/index.ts'
import {
  EventStream,
  type EventStreamOptions,
  LastEventId,
  type NestRequest,
  OvenSseModule,
} from '../../src/nest.ts'

@Controller()
export class Handlers {
  // What an @Sse() handler returns: an rxjs Observable of Nest's MessageEvent.
  @EventStream('observable')
  observable(@LastEventId() lastEventId?: string): Observable<MessageEvent> {
    return interval(1000).pipe(map((n) => ({ id: `${lastEventId}-${n}`, data: { n } })))
  }

  // A content function: ctx.request is the platform's request.
  @EventStream('content', { ping: 10_000, queue: 50, method: RequestMethod.POST })
  content() {
    return async function* ({ request, lastEventId, signal }: StreamContext<NestRequest>) {
      expectTypeOf(request).toEqualTypeOf<NestRequest>()
      expectTypeOf(lastEventId).toEqualTypeOf<string | undefined>()
      expectTypeOf(signal).toEqualTypeOf<AbortSignal>()
      yield { data: 'x' }
    }
  }

  // An async handler resolving to a source.
  @EventStream('async')
  async later() {
    await Promise.resolve()
    return ['one', { event: 'two', data: 2 }]
  }

  // @ts-expect-error a number is not something to stream
  @EventStream('number')
  number() {
    return 42
  }
}

expectTypeOf<EventStreamOptions['queue']>().toEqualTypeOf<number | undefined>()
expectTypeOf<EventStreamOptions['method']>().toEqualTypeOf<RequestMethod | undefined>()
expectTypeOf<NestRequest>().toEqualTypeOf<IncomingMessage | { readonly raw: IncomingMessage }>()
OvenSseModule.forRoot({ ping: false, shutdownGrace: 1000, queue: 100 })
// @ts-expect-error an unknown option does not compile
OvenSseModule.forRoot({ pingg: 1 })
// @ts-expect-error the route's method belongs to @EventStream(), not to the module
OvenSseModule.forRoot({ method: RequestMethod.GET })
