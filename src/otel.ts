/**
 * OpenTelemetry metrics for Oven: open streams, events and bytes sent, drops, closes, broker
 * state and broadcast delivery latency, recorded from Oven's `node:diagnostics_channel` events.
 * Needs the optional peer dependency `@opentelemetry/api`.
 *
 * @example
 * ```ts
 * import { instrumentOven } from 'oven-sse/otel'
 *
 * instrumentOven() // on the global meter provider's meter 'oven-sse'
 * ```
 *
 * @module
 */

export {
  type InstrumentOvenOptions,
  instrumentOven,
  type OvenInstrumentation,
} from './metrics/otel.ts'
