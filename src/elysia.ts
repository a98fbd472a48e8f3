/**
 * Oven for Elysia: `return sse(ctx, content, options)` from a handler. Runs wherever Elysia
 * runs on the web path (Bun, and its web-standard adapters).
 *
 * @module
 */

export { type ElysiaSseContext, type ElysiaSseOptions, sse } from './adapters/elysia.ts'
