/**
 * 08 — NestJS with `oven-sse/nest`, on Express (default) or Fastify.
 *
 * Run:  npx tsx examples/08_nest.ts            (PLATFORM=fastify for platform-fastify)
 * Then: curl -N http://127.0.0.1:8000/prices
 *
 * Endpoints:
 *   /prices             an `@Sse()` handler switched to `@EventStream()` unchanged: an rxjs
 *                       Observable of Nest `MessageEvent`s (`type: 'price'`), resuming after
 *                       `Last-Event-ID` (through `@LastEventId()`)
 *   /events             an async generator: `id` + `data` every tick, resuming after
 *                       `Last-Event-ID`; the server logs when the client goes away
 *   /rooms/<name>       a guard before the stream: without `?token=letmein`, Nest's own 403
 *                       (JSON); an unknown room is Nest's 404 from the handler, before the stream
 *
 * SIGTERM or Ctrl+C ends every open stream cleanly (`enableShutdownHooks`, OvenSseModule's
 * `beforeApplicationShutdown`), then Nest closes the server and the process exits with 0.
 *
 * Environment: PORT (default 8000), TICK_MS (default 1000), PLATFORM (express or fastify).
 */

import { setTimeout as sleep } from 'node:timers/promises'
import {
  type CanActivate,
  Controller,
  type ExecutionContext,
  type MessageEvent,
  Module,
  NotFoundException,
  type OnApplicationShutdown,
  Param,
  UseGuards,
} from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { ExpressAdapter } from '@nestjs/platform-express'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import { interval, map, type Observable } from 'rxjs'
import type { StreamContext } from '../src/index.ts'
import { EventStream, LastEventId, type NestRequest, OvenSseModule } from '../src/nest.ts'

const tick = Number(process.env.TICK_MS ?? 1000)
const ROOMS = new Set(['lobby', 'a', 'b'])

/** Lets a request in with `?token=letmein`; Nest answers 403 otherwise. */
class TokenGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<NestRequest>()
    const url = 'raw' in request ? request.raw.url : request.url
    return new URL(url ?? '/', 'http://localhost').searchParams.get('token') === 'letmein'
  }
}

@Controller()
class StreamsController {
  // Was `@Sse('prices')`: the body did not change.
  @EventStream('prices')
  prices(@LastEventId() lastEventId?: string): Observable<MessageEvent> {
    const from = Number(lastEventId ?? 0)
    return interval(tick).pipe(
      map((n) => {
        const id = from + n + 1
        return { id: String(id), type: 'price', data: { id, price: 100 + (id % 7) } }
      }),
    )
  }

  @EventStream('events')
  events() {
    return async function* ({ signal, lastEventId }: StreamContext<NestRequest>) {
      let id = Number(lastEventId ?? 0)
      try {
        while (true) {
          id++
          yield { id: String(id), data: `tick ${id}` }
          // ctx.signal aborts the moment the client leaves: the sleep ends at once.
          await sleep(tick, undefined, { signal })
        }
      } finally {
        console.log(`stream ended after id ${id} (${String(signal.reason)})`)
      }
    }
  }

  @EventStream('rooms/:name')
  @UseGuards(TokenGuard)
  room(@Param('name') name: string) {
    // Before the stream: a throw here is Nest's own error response.
    if (!ROOMS.has(name)) throw new NotFoundException(`no room "${name}"`)
    return async function* ({ signal }: StreamContext<NestRequest>) {
      for (let n = 1; !signal.aborted; n++) {
        yield { event: 'message', data: { room: name, n } }
        await sleep(tick, undefined, { signal })
      }
    }
  }
}

/** Says when Nest has closed everything, after the streams ended. */
class ShutdownNotice implements OnApplicationShutdown {
  onApplicationShutdown(): void {
    console.log('shutdown complete; exiting')
  }
}

@Module({
  imports: [OvenSseModule.forRoot({ ping: 15_000 })],
  controllers: [StreamsController],
  providers: [ShutdownNotice],
})
class AppModule {}

const adapter = process.env.PLATFORM === 'fastify' ? new FastifyAdapter() : new ExpressAdapter()
const app = await NestFactory.create(AppModule, adapter, { logger: ['error', 'warn'] })
// useProcessExit: exit with 0 once closed (Nest's default raises the signal again).
app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true })
await app.listen(Number(process.env.PORT ?? 8000), '127.0.0.1')

const address = app.getHttpServer().address()
console.log(
  `listening on http://127.0.0.1:${typeof address === 'object' && address ? address.port : ''}`,
)
