/**
 * Oven for NestJS (`@nestjs/platform-express` or `@nestjs/platform-fastify`): the
 * `@EventStream()` route decorator, a drop-in for `@Sse()` that also takes async generators and
 * content functions, `OvenSseModule.forRoot()` for defaults and clean shutdown, and
 * `@LastEventId()`.
 *
 * @module
 */

export {
  EventStream,
  type EventStreamHandler,
  type EventStreamOptions,
  type EventStreamResult,
  LastEventId,
  type NestMessageEvent,
  type NestRequest,
  type NestSseOptions,
  OvenSseModule,
} from './adapters/nest.ts'
export type { Subscribable } from './stream/observable.ts'
