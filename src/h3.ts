/**
 * Oven for h3 v2 (Nitro, Nuxt): `return sse(event, content, options)` from a handler. Works
 * wherever h3 runs (Node through srvx, Bun, Deno, Cloudflare Workers).
 *
 * @module
 */

export { type H3SseOptions, sse } from './adapters/h3.ts'
