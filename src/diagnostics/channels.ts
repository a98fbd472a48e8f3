/**
 * Oven's lifecycle events on `node:diagnostics_channel`: every channel name and the type of
 * every message, in one place. `docs/observability.md` documents them; names and documented
 * fields do not change within a major version.
 *
 * The module is reached lazily and once, through `process.getBuiltinModule` (Node ≥ 20.16,
 * Bun, Deno), never by a static `import 'node:…'`: the core keeps loading where `node:`
 * modules are absent (Workers without `nodejs_compat`, browsers). There every channel is inert:
 * it never has subscribers and publishing does nothing.
 *
 * Publishers check `channel.hasSubscribers` before they build a message, so a stream nobody
 * observes allocates nothing for observability (measured with the `idle` and `stream`
 * scenarios of `npm run bench`; see `docs/observability.md`).
 *
 * @module
 */

/** The part of a `diagnostics_channel` Channel that Oven uses. */
export interface DiagnosticsChannel<Message> {
  /** Whether anyone listens: check it before building a message. */
  readonly hasSubscribers: boolean
  /** Hands `message` to every subscriber, synchronously. */
  publish(message: Message): void
}

/** The part of `node:diagnostics_channel` that Oven uses. */
interface DiagnosticsModule {
  channel(name: string): DiagnosticsChannel<unknown>
  subscribe(name: string, listener: (message: unknown, name: string | symbol) => void): void
  unsubscribe(name: string, listener: (message: unknown, name: string | symbol) => void): boolean
}

/** A built-in module by name where the runtime offers `process.getBuiltinModule`. */
function builtin<T>(id: string): T | undefined {
  const process = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } })
    .process
  try {
    return process?.getBuiltinModule?.(id) as T | undefined
  } catch {
    return undefined
  }
}

const diagnostics = builtin<DiagnosticsModule>('node:diagnostics_channel')

/** A channel without a runtime to carry it: never subscribed, publishing does nothing. */
const INERT: DiagnosticsChannel<never> = { hasSubscribers: false, publish() {} }

/**
 * Whether this runtime carries Oven's channels (`node:diagnostics_channel` reachable through
 * `process.getBuiltinModule`): Node ≥ 20.16, Bun, Deno, Workers with `nodejs_compat`.
 */
export const diagnosticsAvailable: boolean = diagnostics !== undefined

function channel<Message>(name: string): DiagnosticsChannel<Message> {
  return (diagnostics?.channel(name) as DiagnosticsChannel<Message> | undefined) ?? INERT
}

/**
 * Subscribes `listener` to the channel `name` (held strongly until unsubscribed). Returns a
 * function that unsubscribes it, or `undefined` when the runtime has no diagnostics channels.
 *
 * @internal
 */
export function subscribeChannel<Message>(
  name: string,
  listener: (message: Message) => void,
): (() => void) | undefined {
  if (!diagnostics) return undefined
  const wrapped = listener as (message: unknown) => void
  diagnostics.subscribe(name, wrapped)
  return () => {
    diagnostics.unsubscribe(name, wrapped)
  }
}

// ---- messages ----------------------------------------------------------------------------------

/**
 * Why a stream ended, as in `onClose`: `CloseReason`, repeated so this module imports nothing
 * (the pump passes a `CloseReason` here, so the compiler keeps the two in step).
 */
export type StreamCloseReason =
  | 'done'
  | 'disconnect'
  | 'shutdown'
  | 'timeout'
  | 'error'
  | 'rejected'
  | 'maxDuration'

/**
 * One stream, as Oven's channels show it: the same object in every message about that stream,
 * so a subscriber can key a `WeakMap` by it.
 */
export interface StreamInfo<Req = unknown> {
  /** The request: Node's `IncomingMessage` (or HTTP/2 request), or the web `Request` option. */
  readonly request: Req
  /**
   * `performance.now()` when the stream opened (after its response head was sent). Present
   * only when a subscriber of {@link CHANNELS.streamClose} was listening at that moment: the
   * time is kept only for someone who will read the duration.
   */
  readonly openedAt: number | undefined
}

/** {@link CHANNELS.streamOpen}: a stream started, after its response head was sent. */
export interface StreamOpenMessage {
  readonly stream: StreamInfo
}

/** {@link CHANNELS.streamClose}: a stream ended, once, for `reason`. */
export interface StreamCloseMessage {
  readonly stream: StreamInfo
  readonly reason: StreamCloseReason
  /**
   * Whether it had opened (a {@link CHANNELS.streamOpen} message was due). A stream refused
   * before its head (`rejected`, `shutdown` before opening, a content function that threw
   * before anything was sent) closes without having opened.
   */
  readonly opened: boolean
  /**
   * Milliseconds from open to close; present when {@link StreamInfo.openedAt} is (a close
   * subscriber was listening when the stream opened).
   */
  readonly durationMs: number | undefined
}

/** {@link CHANNELS.streamError}: the error that ended a stream (reason `error`). */
export interface StreamErrorMessage {
  readonly stream: StreamInfo
  readonly error: unknown
}

/**
 * {@link CHANNELS.streamEvent}: the stream took one item from its source and encoded it for
 * writing (pings are not items). It reaches the socket with the stream's next
 * {@link CHANNELS.streamWrite}.
 */
export interface StreamEventMessage {
  readonly stream: StreamInfo
  /** The item as the source produced it (a string, an event object, a `ServerSentEvent`…). */
  readonly item: unknown
  /**
   * `performance.now()` when `Broadcaster.publish` was called for this event, for events
   * published on this process (only while a subscriber of {@link CHANNELS.streamEvent}
   * listened at publish time); `undefined` otherwise.
   */
  readonly publishedAt: number | undefined
}

/** {@link CHANNELS.streamWrite}: a chunk was handed to the transport (socket or body stream). */
export interface StreamWriteMessage {
  readonly stream: StreamInfo
  /** Its size in bytes, as UTF-8. */
  readonly bytes: number
}

/** {@link CHANNELS.sendTimeout}: a client that stopped reading was dropped (`sendTimeout`). */
export interface SendTimeoutMessage {
  readonly stream: StreamInfo
  /** The `sendTimeout` option, in ms. */
  readonly sendTimeout: number
}

/**
 * {@link CHANNELS.overflow}: a subscriber's queue of a `Broadcaster` was full. With
 * `'disconnect'` the subscriber is dropped (its stream then closes with reason `timeout`);
 * with `'drop-oldest'` its oldest queued event was discarded.
 */
export interface OverflowMessage {
  readonly policy: 'disconnect' | 'drop-oldest'
  /** The topics of the subscription. */
  readonly topics: readonly string[]
}

/** A state of a broadcaster's live feed, plus `closed` once its broadcaster closed. */
export type FeedStateName = 'live' | 'interrupted' | 'catching-up' | 'closed'

/**
 * {@link CHANNELS.brokerState}: a broadcaster's live feed from its broker changed state:
 * `interrupted` (the broker lost its connection: live messages are held), `catching-up`
 * (reading what was missed from the history), `live` again (resynced), or `closed`.
 * Also sent once, with `previous` undefined, when a broadcaster is made.
 */
export interface BrokerStateMessage {
  /** The broadcaster whose feed it is: the same object in every message about it. */
  readonly broadcaster: object
  readonly state: FeedStateName
  readonly previous: FeedStateName | undefined
}

/** {@link CHANNELS.limitReject}: a `ConnectionLimiter` turned a stream away (`503`). */
export interface LimitRejectMessage {
  /** Which limit was reached: `max` (all keys) or `maxPerKey`. */
  readonly limit: 'max' | 'maxPerKey'
  /** The stream's key (`key` option), if it has one. */
  readonly key: string | undefined
  readonly request: unknown
}

// ---- the channels ------------------------------------------------------------------------------

/** The name of every channel Oven publishes on; see `docs/observability.md`. */
export const CHANNELS = {
  /** {@link StreamOpenMessage} */
  streamOpen: 'oven-sse:stream:open',
  /** {@link StreamCloseMessage} */
  streamClose: 'oven-sse:stream:close',
  /** {@link StreamErrorMessage} */
  streamError: 'oven-sse:stream:error',
  /** {@link StreamEventMessage}, per item: subscribe only when you need it. */
  streamEvent: 'oven-sse:stream:event',
  /** {@link StreamWriteMessage}, per write: subscribe only when you need it. */
  streamWrite: 'oven-sse:stream:write',
  /** {@link SendTimeoutMessage} */
  sendTimeout: 'oven-sse:stream:send-timeout',
  /** {@link OverflowMessage} */
  overflow: 'oven-sse:broadcast:overflow',
  /** {@link BrokerStateMessage} */
  brokerState: 'oven-sse:broadcast:broker-state',
  /** {@link LimitRejectMessage} */
  limitReject: 'oven-sse:limit:reject',
} as const

/** The channels, as the publishers use them. @internal */
export const streamOpen = channel<StreamOpenMessage>(CHANNELS.streamOpen)
/** @internal */
export const streamClose = channel<StreamCloseMessage>(CHANNELS.streamClose)
/** @internal */
export const streamError = channel<StreamErrorMessage>(CHANNELS.streamError)
/** @internal */
export const streamEvent = channel<StreamEventMessage>(CHANNELS.streamEvent)
/** @internal */
export const streamWrite = channel<StreamWriteMessage>(CHANNELS.streamWrite)
/** @internal */
export const sendTimeout = channel<SendTimeoutMessage>(CHANNELS.sendTimeout)
/** @internal */
export const overflow = channel<OverflowMessage>(CHANNELS.overflow)
/** @internal */
export const brokerState = channel<BrokerStateMessage>(CHANNELS.brokerState)
/** @internal */
export const limitReject = channel<LimitRejectMessage>(CHANNELS.limitReject)

/** The clock of every time in these messages. @internal */
export const now: () => number = () => performance.now()

/**
 * Publish times of events published on this process, by the shared `ServerSentEvent` each
 * becomes here; read into {@link StreamEventMessage.publishedAt}. Filled only while someone
 * subscribes to {@link CHANNELS.streamEvent}.
 *
 * @internal
 */
export const publishTimes = new WeakMap<object, number>()

/**
 * The UTF-8 size of `text` as a transport writes it (a lone surrogate becomes U+FFFD, three
 * bytes). Only called while someone subscribes to {@link CHANNELS.streamWrite}. Native where
 * the runtime has `node:buffer` (measured with the `stream` scenario of `npm run bench`: the
 * loop below doubled the CPU per 4 KiB event of an observed stream).
 *
 * @internal
 */
export const utf8Length: (text: string) => number =
  builtin<{ Buffer: { byteLength(text: string): number } }>('node:buffer')?.Buffer.byteLength ??
  utf8LengthOf

/** {@link utf8Length} in JavaScript. @internal */
export function utf8LengthOf(text: string): number {
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) continue
    if (code < 0x800) bytes += 1
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1)
      // A pair: 4 bytes for its two code units.
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2
        i++
      } else bytes += 2
    } else bytes += 2
  }
  return bytes
}
