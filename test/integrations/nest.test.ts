/**
 * NestJS 12 with `oven-sse/nest`, on `@nestjs/platform-express` and `@nestjs/platform-fastify`:
 * a real Nest app on each, over real sockets. Both run the shared scenarios, plus what is Nest's
 * own: Observables (an `@Sse()` handler switched over unchanged), exception filters before the
 * first event, guards and interceptors, `@LastEventId()`, disconnects (latencies printed as
 * JSON), the Observable queue's bound, and `app.close()` with open streams.
 */

import { request as httpRequest } from 'node:http'
import {
  type ArgumentsHost,
  type CallHandler,
  type CanActivate,
  Catch,
  Controller,
  type ExceptionFilter,
  type ExecutionContext,
  Header,
  type INestApplication,
  Inject,
  type LoggerService,
  type MessageEvent,
  type NestInterceptor,
  Sse,
  UnauthorizedException,
  UseFilters,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common'
import { HttpAdapterHost, NestFactory } from '@nestjs/core'
import { ExpressAdapter } from '@nestjs/platform-express'
import { FastifyAdapter } from '@nestjs/platform-fastify'
import { interval, map, Observable, of, take, tap, throwError } from 'rxjs'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type CloseReason, SseError, type StreamContext } from '../../src/index.ts'
import { EventStream, LastEventId, type NestRequest, OvenSseModule } from '../../src/nest.ts'
import { readEvents } from '../../src/testing.ts'
import { waitFor, within } from '../helpers/wait.ts'
import { http1Client } from './fixtures/clients.ts'
import { createScenario, FAIL_MESSAGE, PRESET_HEADERS, type Scenario } from './fixtures/scenario.ts'
import { sseScenarios, type Target } from './fixtures/suite.ts'

// ---- what the app records ------------------------------------------------------------------

/** Every line Nest's logger was given (one logger for the process: Nest's is global). */
const logged: Array<{ level: string; text: string }> = []

const recorder: LoggerService = {
  log: () => {},
  error: (...args: unknown[]) => logged.push({ level: 'error', text: show(args) }),
  warn: (...args: unknown[]) => logged.push({ level: 'warn', text: show(args) }),
}

function show(args: unknown[]): string {
  return args
    .map((arg) => (arg instanceof Error ? `${arg.message} ${arg.stack}` : String(arg)))
    .join(' ')
}

/** What the Nest-specific routes saw, per app. */
interface Seen {
  /** `/timed` streams: when the signal aborted and when the generator's `finally` ran. */
  timed: Array<{ abortedAt?: number; finishedAt?: number }>
  /** `/timed-observable` subscriptions: when each was torn down. */
  unsubscribed: number[]
  /** Close reasons the interceptor of `/intercepted` saw, once each stream ended. */
  intercepted: CloseReason[]
  /** How often the guarded handler ran. */
  guardedRuns: number
  /** `/burst` Observables: how many are subscribed, and how many events they emitted. */
  bursts: { subscribed: number; emitted: number }
}

const SCENARIO = Symbol('scenario')
const SEEN = Symbol('seen')

/** Thrown by `/teapot`'s content function; the app's own filter answers it. */
class TeapotError extends Error {}

@Catch(TeapotError)
class TeapotFilter implements ExceptionFilter {
  constructor(@Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost) {}
  catch(error: TeapotError, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse()
    this.adapterHost.httpAdapter.reply(response, { teapot: error.message }, 418)
  }
}

/** Lets a request in only with `x-token: ok`. */
class TokenGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>()
    return request.headers['x-token'] === 'ok'
  }
}

/** Records the value the handler's promise settles with: the stream's close reason. */
class ReasonInterceptor implements NestInterceptor {
  constructor(@Inject(SEEN) private readonly seen: Seen) {}
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(tap((reason) => this.seen.intercepted.push(reason as CloseReason)))
  }
}

/** The same feed an `@Sse()` route and an `@EventStream()` route return. */
function ticks(from: number): Observable<MessageEvent> {
  return interval(5).pipe(
    take(3),
    map((i) => ({ id: String(from + i + 1), type: 'tick', data: { n: from + i + 1 } })),
  )
}

@Controller()
class ScenarioController {
  constructor(@Inject(SCENARIO) private readonly scenario: Scenario) {}

  @EventStream('events')
  events() {
    return this.scenario.events
  }

  @EventStream('once')
  once() {
    return this.scenario.once
  }

  @EventStream('fail')
  fail() {
    return this.scenario.fail
  }

  @EventStream('flood')
  flood() {
    return this.scenario.flood
  }

  // The module's defaults carry a retry line: none here.
  @EventStream('quiet', { retry: undefined })
  quiet() {
    return this.scenario.quiet
  }

  @EventStream('preset')
  @Header('Cache-Control', PRESET_HEADERS['Cache-Control'])
  @Header('X-Trace', PRESET_HEADERS['X-Trace'])
  @Header('Content-Type', PRESET_HEADERS['Content-Type'])
  @Header('Content-Length', PRESET_HEADERS['Content-Length'])
  preset() {
    return this.scenario.once
  }
}

@Controller()
class NestController {
  constructor(@Inject(SEEN) private readonly seen: Seen) {}

  // Nest's own @Sse(), to compare with: the handler below is the same code.
  @Sse('ticks-by-nest')
  ticksByNest(@LastEventId() lastEventId?: string): Observable<MessageEvent> {
    return ticks(Number(lastEventId ?? 0))
  }

  @EventStream('ticks')
  ticks(@LastEventId() lastEventId?: string): Observable<MessageEvent> {
    return ticks(Number(lastEventId ?? 0))
  }

  @EventStream('denied')
  denied(): never {
    throw new UnauthorizedException('a token is required')
  }

  @EventStream('denied-content')
  deniedContent() {
    return async () => {
      await Promise.resolve()
      throw new UnauthorizedException('the content function refused')
    }
  }

  @EventStream('denied-observable')
  deniedObservable(): Observable<MessageEvent> {
    return throwError(() => new UnauthorizedException('the Observable refused'))
  }

  @EventStream('breaks')
  breaks(): Observable<MessageEvent> {
    return new Observable<MessageEvent>((subscriber) => {
      subscriber.next({ data: 'first', type: 'note' })
      setTimeout(() => subscriber.error(new Error('broken mid-stream')), 5)
    })
  }

  @EventStream('teapot')
  @UseFilters(TeapotFilter)
  teapot() {
    return async () => {
      throw new TeapotError('short and stout')
    }
  }

  // The guard is below the decorator: it reaches the handler through the wrapper.
  @EventStream('guarded')
  @UseGuards(TokenGuard)
  guarded() {
    this.seen.guardedRuns++
    return ['welcome']
  }

  // The interceptor is above it: it wraps the stream's whole life.
  @UseInterceptors(ReasonInterceptor)
  @EventStream('intercepted')
  intercepted() {
    return ['a', 'b']
  }

  @EventStream('timed')
  timed() {
    const seen: Seen['timed'][number] = {}
    this.seen.timed.push(seen)
    return async function* ({ signal }: StreamContext<NestRequest>) {
      signal.addEventListener('abort', () => {
        seen.abortedAt = performance.now()
      })
      try {
        yield { data: 'first' }
        await new Promise((resolve) => signal.addEventListener('abort', resolve))
      } finally {
        seen.finishedAt = performance.now()
      }
    }
  }

  @EventStream('timed-observable')
  timedObservable(): Observable<MessageEvent> {
    return new Observable<MessageEvent>((subscriber) => {
      subscriber.next({ data: 'first' })
      return () => this.seen.unsubscribed.push(performance.now())
    })
  }

  /**
   * 16 KiB events, ids counting on from the client's Last-Event-ID, 8 per macrotask for as
   * long as it is subscribed (at most 4000): far faster than a client that stopped reading.
   */
  @EventStream('burst', { queue: 10 })
  burst(@LastEventId() lastEventId?: string): Observable<MessageEvent> {
    const bursts = this.seen.bursts
    return new Observable<MessageEvent>((subscriber) => {
      bursts.subscribed++
      let id = Number(lastEventId ?? 0)
      const data = 'x'.repeat(16 * 1024)
      let timer: ReturnType<typeof setImmediate> | undefined
      const emit = () => {
        for (let i = 0; i < 8 && id < 4000 && !subscriber.closed; i++) {
          bursts.emitted++
          subscriber.next({ id: String(++id), data })
        }
        if (!subscriber.closed && id < 4000) timer = setImmediate(emit)
      }
      emit()
      return () => {
        clearImmediate(timer)
        bursts.subscribed--
      }
    })
  }

  @EventStream('burst-at-once', { queue: 10 })
  burstAtOnce(): Observable<string> {
    return of(...Array.from({ length: 20 }, (_, i) => `event ${i}`))
  }
}

// ---- the apps -------------------------------------------------------------------------------

type Platform = 'express' | 'fastify'

function adapterFor(platform: Platform) {
  return platform === 'express' ? new ExpressAdapter() : new FastifyAdapter()
}

async function startApp(platform: Platform, scenario: Scenario, seen: Seen) {
  const app = await NestFactory.create<INestApplication>(
    {
      module: class AppModule {},
      imports: [OvenSseModule.forRoot(scenario.options)],
      controllers: [ScenarioController, NestController],
      providers: [
        { provide: SCENARIO, useValue: scenario },
        { provide: SEEN, useValue: seen },
        ReasonInterceptor,
      ],
    },
    adapterFor(platform),
    { logger: recorder },
  )
  await app.listen(0, '127.0.0.1')
  const address = app.getHttpServer().address()
  const port = typeof address === 'object' && address ? address.port : 0
  return { app, base: `http://127.0.0.1:${port}` }
}

function newSeen(): Seen {
  return {
    timed: [],
    unsubscribed: [],
    intercepted: [],
    guardedRuns: 0,
    bursts: { subscribed: 0, emitted: 0 },
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/** Opens `path` over a raw request; resolves once its first event has arrived. */
function openFirst(base: string, path: string) {
  return new Promise<{ sentAt: number; firstAt: number; close: () => void }>((resolve, reject) => {
    const sentAt = performance.now()
    const req = httpRequest(`${base}${path}`, { agent: false }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8')
        if (text.includes('data: first')) {
          res.removeAllListeners('data')
          resolve({ sentAt, firstAt: performance.now(), close: () => req.destroy() })
        }
      })
    })
    req.on('error', reject)
    req.end()
  })
}

const round = (values: number[]) => values.map((ms) => Number(ms.toFixed(1)))

// ---- the tests ------------------------------------------------------------------------------

for (const platform of ['express', 'fastify'] as const) {
  describe(`NestJS 12 on platform-${platform}`, () => {
    const scenario = createScenario()
    const seen = newSeen()
    let app: INestApplication
    let target: Target

    beforeAll(async () => {
      const started = await startApp(platform, scenario, seen)
      app = started.app
      target = {
        base: started.base,
        client: http1Client(),
        state: async () => scenario.state(),
        closeAll: () => scenario.closeAll(),
        expectError: ({ status, headers, body }) => {
          // Nest's BaseExceptionFilter: 500 and a JSON body that hides the error...
          expect(status).toBe(500)
          expect(headers.get('content-type')).toMatch(/^application\/json/)
          expect(JSON.parse(body)).toEqual({ statusCode: 500, message: 'Internal server error' })
          // ...after logging it.
          const entry = logged.findIndex((line) => line.text.includes(FAIL_MESSAGE))
          expect(entry).toBeGreaterThanOrEqual(0)
          logged.splice(entry, 1)
        },
      }
    })

    afterAll(async () => {
      await app?.close()
    })

    sseScenarios(`nest ${platform}`, () => target)

    test('an @Sse() handler switched to @EventStream() sends what @Sse() sends, resuming from @LastEventId()', async () => {
      const read = (path: string, lastEventId?: string) =>
        readEvents(`${target.base}${path}`, {
          timeout: 10_000,
          headers: lastEventId === undefined ? {} : { 'last-event-id': lastEventId },
        }).then((events) => events.map(({ event, id, data }) => ({ event, id, data })))
      const expected = [
        { event: 'tick', id: '1', data: '{"n":1}' },
        { event: 'tick', id: '2', data: '{"n":2}' },
        { event: 'tick', id: '3', data: '{"n":3}' },
      ]
      expect(await read('/ticks-by-nest')).toEqual(expected)
      expect(await read('/ticks')).toEqual(expected)
      expect(await read('/ticks', '41')).toEqual([
        { event: 'tick', id: '42', data: '{"n":42}' },
        { event: 'tick', id: '43', data: '{"n":43}' },
        { event: 'tick', id: '44', data: '{"n":44}' },
      ])
      const response = await fetch(`${target.base}/ticks`)
      expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
      await response.text()
    })

    test("an UnauthorizedException before the first event is Nest's 401, from the handler, the content function or the Observable", async () => {
      for (const [path, message] of [
        ['/denied', 'a token is required'],
        ['/denied-content', 'the content function refused'],
        ['/denied-observable', 'the Observable refused'],
      ] as const) {
        const response = await fetch(`${target.base}${path}`, {
          headers: { accept: 'text/event-stream' },
        })
        expect(response.status, path).toBe(401)
        expect(response.headers.get('content-type'), path).toMatch(/^application\/json/)
        expect(await response.json()).toEqual({
          statusCode: 401,
          error: 'Unauthorized',
          message,
        })
      }
      expect((await target.state()).registered).toBe(0)
    })

    test('an Observable error after the head ends the stream once what came before is out, and is logged', async () => {
      logged.length = 0
      // readEvents without `count` settles only on a clean end of the response.
      const events = await readEvents(`${target.base}/breaks`, { timeout: 10_000 })
      expect(events.map((event) => [event.event, event.data])).toEqual([['note', 'first']])
      await waitFor('the error logged', () => logged, {
        until: (lines) => lines.some((line) => line.text.includes('broken mid-stream')),
      })
      expect(logged.filter((line) => line.level === 'error')).toHaveLength(1)
      logged.length = 0
    })

    test("the route's own @Catch() filter (@UseFilters) answers an error of the content function", async () => {
      const response = await fetch(`${target.base}/teapot`)
      expect(response.status).toBe(418)
      expect(await response.json()).toEqual({ teapot: 'short and stout' })
    })

    test('a guard that refuses gives 403 and the handler never runs; one that admits streams', async () => {
      const refused = await fetch(`${target.base}/guarded`)
      expect(refused.status).toBe(403)
      expect(await refused.json()).toMatchObject({ statusCode: 403, message: 'Forbidden resource' })
      expect(seen.guardedRuns).toBe(0)
      const events = await readEvents(`${target.base}/guarded`, { headers: { 'x-token': 'ok' } })
      expect(events.map((event) => event.data)).toEqual(['welcome'])
      expect(seen.guardedRuns).toBe(1)
    })

    test('an interceptor wraps the whole stream: it sees the close reason once it has ended', async () => {
      const events = await readEvents(`${target.base}/intercepted`)
      expect(events.map((event) => event.data)).toEqual(['a', 'b'])
      await waitFor('the interceptor to see the end', () => seen.intercepted, {
        until: (reasons) => reasons.length === 1,
      })
      expect(seen.intercepted).toEqual(['done'])
    })

    test('first-event latency; a client close aborts ctx.signal within 200 ms and runs finally; an Observable is unsubscribed', async () => {
      const firsts: number[] = []
      const aborts: number[] = []
      const finallies: number[] = []
      const observableFirsts: number[] = []
      const unsubscribes: number[] = []
      // Five of each, one at a time: the median is the figure, so one scheduling hiccup of a
      // busy machine does not decide the bound.
      for (let i = 0; i < 5; i++) {
        seen.timed.length = 0
        const stream = await openFirst(target.base, '/timed')
        firsts.push(stream.firstAt - stream.sentAt)
        const timed = seen.timed[0]!
        const closedAt = performance.now()
        stream.close()
        await waitFor(`/timed #${i + 1}: its finally after the client closed`, () => timed, {
          until: (s) => s.finishedAt !== undefined,
        })
        aborts.push(timed.abortedAt! - closedAt)
        finallies.push(timed.finishedAt! - closedAt)

        seen.unsubscribed.length = 0
        const observed = await openFirst(target.base, '/timed-observable')
        observableFirsts.push(observed.firstAt - observed.sentAt)
        const closed = performance.now()
        observed.close()
        await waitFor(`/timed-observable #${i + 1}: unsubscribed`, () => seen.unsubscribed, {
          until: (at) => at.length === 1,
        })
        unsubscribes.push(seen.unsubscribed[0]! - closed)
      }
      await waitFor('every stream left the registry', () => scenario.registry.size, {
        until: (n) => n === 0,
      })
      console.info(
        JSON.stringify({
          nest: platform,
          firstEventMs: round(firsts),
          abortMs: round(aborts),
          finallyMs: round(finallies),
          observableFirstEventMs: round(observableFirsts),
          unsubscribeMs: round(unsubscribes),
        }),
      )
      expect(median(aborts)).toBeLessThan(200)
      expect(median(unsubscribes)).toBeLessThan(200)
    })

    test('an Observable that outruns a client past `queue` is unsubscribed and the client dropped; it resumes with Last-Event-ID, nothing lost', async () => {
      const bursts = seen.bursts
      logged.length = 0
      const response = await target.client.raw(`${target.base}/burst`)
      response.body.pause()
      let text = ''
      const ended = new Promise<void>((resolve) => {
        response.body.on('data', (chunk: Buffer) => {
          text += chunk.toString('utf8')
        })
        response.body.once('close', resolve)
        response.body.once('error', () => resolve())
      })
      try {
        // The client reads nothing: the socket fills, then 10 events wait, then the 11th
        // overflows the queue. The producer is unsubscribed and a warning says why.
        await waitFor('the overflow warning', () => logged, {
          until: (lines) => lines.some((line) => line.level === 'warn'),
        })
        expect(bursts.subscribed).toBe(0)
        const warning = logged.find((line) => line.level === 'warn')!.text
        expect(warning).toContain('GET /burst fell 10 events behind its Observable')
        expect(warning).toContain('"queue" option')
        // The producer stopped: what it emitted is bounded by the buffers, not by its 4000.
        expect(bursts.emitted).toBeLessThan(4000)
        // Whatever reached the client is every event from the first on, with no gap.
        response.body.resume()
        await within(ended, 10_000, 'the dropped connection to end on the client')
      } finally {
        response.close()
      }
      // Complete events only: the connection was cut, maybe in the middle of one.
      const complete = text.slice(0, text.lastIndexOf('\r\n\r\n') + 4)
      const ids = [...complete.matchAll(/^id: (\d+)\r$/gm)].map((match) => Number(match[1]))
      expect(ids).toEqual(ids.map((_, i) => i + 1))
      // Reconnecting from the last id received, the client gets the very next one.
      const last = ids.at(-1)
      const resumed = await readEvents(`${target.base}/burst`, {
        count: 1,
        timeout: 10_000,
        headers: last === undefined ? {} : { 'last-event-id': String(last) },
      })
      expect(resumed[0]?.id).toBe(String((last ?? 0) + 1))
      await waitFor('the resumed producer unsubscribed', () => bursts.subscribed, {
        until: (n) => n === 0,
      })
      figures(platform, `overflow after ${bursts.emitted} events emitted, ${ids.length} received`)
    })

    test('a burst beyond `queue` before the head fails the request: an error for Nest, not a cut stream', async () => {
      logged.length = 0
      const response = await fetch(`${target.base}/burst-at-once`)
      expect(response.status).toBe(500)
      await response.text()
      const error = logged.find((line) => line.level === 'error')?.text
      expect(error).toContain('The Observable emitted more than 10 events (the "queue" option)')
      logged.length = 0
    })
  })
}

/** Figures printed once per platform (the shared suite prints its own). */
function figures(platform: string, text: string): void {
  console.info(`[figures] nest ${platform}: ${text}`)
}

describe('app.close() with open streams', () => {
  for (const platform of ['express', 'fastify'] as const) {
    test(`${platform}: ends every open stream cleanly (beforeApplicationShutdown), then closes`, async () => {
      const scenario = createScenario()
      const seen = newSeen()
      const { app, base } = await startApp(platform, scenario, seen)
      let closed = false
      try {
        // A generator that never ends by itself, and an Observable that never completes.
        const generator = readEvents(`${base}/events`, { timeout: 10_000 })
        const observable = readEvents(`${base}/timed-observable`, { timeout: 10_000 })
        await waitFor('both streams registered', () => scenario.registry.size, {
          until: (n) => n === 2,
        })
        const closing = performance.now()
        await within(app.close(), 10_000, 'app.close() with two open streams')
        closed = true
        const took = performance.now() - closing
        // readEvents without `count` settles only on a clean end of the response.
        expect((await generator).map((event) => event.id)).toEqual(['1', '2'])
        expect((await observable).map((event) => event.data)).toEqual(['first'])
        expect(scenario.state()).toMatchObject({ open: 0, registered: 0 })
        expect(seen.unsubscribed).toHaveLength(1)
        figures(platform, `app.close() with 2 open streams took ${took.toFixed(1)} ms`)
      } finally {
        if (!closed) await app.close()
      }
    })
  }
})

describe('misuse fails at startup, naming the option', () => {
  test('a bad stream option or queue in @EventStream() or forRoot() throws SseError at once', () => {
    const refusals: Array<[() => unknown, string]> = [
      [
        () => EventStream('x', { ping: 15 }),
        'Invalid option "ping": expected a whole number of milliseconds from 1000',
      ],
      [
        () => EventStream('x', { queue: 0 }),
        'Invalid option "queue": expected a whole number of events, at least 1, received number 0.',
      ],
      [
        () => OvenSseModule.forRoot({ queue: 1.5 }),
        'Invalid option "queue": expected a whole number of events, at least 1, received number 1.5.',
      ],
      [
        () => OvenSseModule.forRoot({ sendTimout: 1000 } as never),
        'Unknown option "sendTimout" for a stream',
      ],
    ]
    for (const [misuse, message] of refusals) {
      let thrown: unknown
      try {
        misuse()
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(SseError)
      expect((thrown as SseError).code).toBe('ERR_SSE_INVALID_OPTION')
      expect((thrown as SseError).message).toContain(message)
    }
  })
})
