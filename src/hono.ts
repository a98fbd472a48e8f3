/**
 * Oven for Hono: `return sse(c, content, options)` from a handler. Works wherever Hono runs
 * (`@hono/node-server`, Bun, Deno, Cloudflare Workers).
 *
 * @module
 */

export { type HonoSseOptions, sse } from './adapters/hono.ts'
