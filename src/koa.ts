/**
 * Oven for Koa: `await sse(ctx, content, options)` in a middleware.
 *
 * @module
 */

export { type KoaSseOptions, sse } from './adapters/koa.ts'
