/**
 * Oven: production-grade Server-Sent Events for TypeScript servers.
 *
 * This entry point is web-standard (no `node:` imports): the encoder, the web `Response`,
 * channels, broadcasting, detached runs, the shutdown registry and the errors. Node's `sendEventStream` is in
 * `oven-sse/node`; framework helpers are in `oven-sse/fastify`, `oven-sse/hono`, `oven-sse/h3`,
 * `oven-sse/koa`, `oven-sse/elysia`.
 *
 * @module
 */

export type { Authorization, AuthorizeHook } from './broadcast/authorize.ts'
export {
  Broadcaster,
  type BroadcasterOptions,
  type BroadcastStats,
  type PublishItem,
  type SubscribeOptions,
} from './broadcast/broadcaster.ts'
export type { Broker, BrokerMessage, BrokerSink, HistoryRead } from './broadcast/broker.ts'
export { formatEventId, type Position, parseEventId } from './broadcast/event-id.ts'
export { MemoryBroker } from './broadcast/memory-broker.ts'
export type { BroadcastItem } from './broadcast/payload.ts'
export {
  type BroadcastFilter,
  type OverflowPolicy,
  RESET_EVENT,
  type ResetReason,
  Subscription,
} from './broadcast/subscription.ts'
export type { TopicListing, WildcardBroker } from './broadcast/wildcard-broker.ts'
export { type Channel, type ChannelOptions, createChannel } from './channels/channel.ts'
export { MemoryPresenceStore } from './cluster/memory-presence-store.ts'
export {
  type JoinOptions,
  type LeavePresence,
  Presence,
  type PresenceEvent,
  type PresenceLeave,
  type PresenceList,
  type PresenceMember,
  type PresenceOptions,
  type PresenceStore,
} from './cluster/presence.ts'
export {
  type AnyContract,
  type Contract,
  type ContractBroadcastItem,
  type ContractData,
  type ContractEvent,
  type ContractEventName,
  type ContractEvents,
  type ContractInput,
  type ContractInputData,
  type ContractOptions,
  defineContract,
  isContract,
  validateEvent,
} from './contracts/contract.ts'
export {
  type EventStreamMediaType,
  type EventStreamMediaTypeOptions,
  eventStreamMediaType,
  type JsonSchema,
} from './contracts/openapi.ts'
export {
  type ContractContent,
  type ContractSource,
  typedSource,
} from './contracts/source.ts'
export type { StandardJSONSchemaV1, StandardSchemaV1 } from './contracts/standard-schema.ts'
export {
  type BrokerStateMessage,
  CHANNELS,
  type DiagnosticsChannel,
  diagnosticsAvailable,
  type FeedStateName,
  type LimitRejectMessage,
  type OverflowMessage,
  type SendTimeoutMessage,
  type StreamCloseMessage,
  type StreamCloseReason,
  type StreamErrorMessage,
  type StreamEventMessage,
  type StreamInfo,
  type StreamOpenMessage,
  type StreamWriteMessage,
} from './diagnostics/channels.ts'
export {
  DEFAULT_SEPARATOR,
  type EncodeOptions,
  type EventInit,
  encodeEvent,
  type Separator,
  type Serializer,
  ServerSentEvent,
} from './encoder/encode.ts'
export { isSseError, SseError, type SseErrorCode } from './errors.ts'
export { acceptsEventStream, requestAcceptsEventStream } from './http/accept.ts'
export {
  ConnectionLimiter,
  type ConnectionLimitOptions,
  type ReleaseSlot,
} from './limits/connection-limit.ts'
export type { Admission, Limiter } from './limits/limiter.ts'
export {
  type AttachOptions,
  END_EVENT,
  type RunEndReason,
  type RunHandle,
  type RunProducer,
  type RunState,
  Runs,
  type RunsOptions,
} from './runs/runs.ts'
export {
  type CloseAllOptions,
  defaultRegistry,
  StreamRegistry,
} from './shutdown/registry.ts'
export {
  type ClosableServer,
  installShutdownHandlers,
  type ShutdownHandlerOptions,
} from './shutdown/signals.ts'
export { DEFAULT_PING } from './stream/options.ts'
export type {
  CloseReason,
  Content,
  ContentItem,
  ContentSource,
  HeadersInput,
  StreamContext,
  StreamOptions,
} from './stream/types.ts'
export { EventSourceResponse, type EventSourceResponseOptions } from './transports/web.ts'
export { openEventSourceResponse } from './transports/web-open.ts'
