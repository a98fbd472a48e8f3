/**
 * Oven on Node: `sendEventStream` for `node:http`, the `node:http2` compatibility API, Express
 * and Koa. Everything from `oven-sse` is re-exported, so one import is enough.
 *
 * @module
 */

export { incomingAcceptsEventStream } from './http/accept-node.ts'
export * from './index.ts'
export { type NodeRequest, type NodeResponse, sendEventStream } from './transports/node.ts'
