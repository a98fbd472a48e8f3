/**
 * Oven for Fastify: the {@link ovenSse} plugin adds `reply.sse(content, options)`.
 *
 * @module
 */

export {
  type FastifySseOptions,
  type OvenSsePluginOptions,
  ovenSse,
} from './adapters/fastify.ts'
