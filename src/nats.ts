/**
 * Oven's NATS JetStream broker: share topics, history and event ids between several server
 * processes. Needs the optional peer dependencies `@nats-io/transport-node` and
 * `@nats-io/jetstream` (v3), and nats-server 2.9 or later with JetStream enabled.
 *
 * @example
 * ```ts
 * import { Broadcaster } from 'oven-sse'
 * import { NatsBroker } from 'oven-sse/nats'
 *
 * const hub = new Broadcaster({ broker: new NatsBroker({ servers: 'nats://localhost:4222' }) })
 * ```
 *
 * @module
 */

export { NatsBroker, type NatsBrokerOptions } from './broadcast/nats-broker.ts'
