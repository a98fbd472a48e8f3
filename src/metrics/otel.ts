/**
 * OpenTelemetry metrics for Oven, built on its diagnostics channels
 * (`diagnostics/channels.ts`): nothing here runs, and no stream pays for it, until
 * {@link instrumentOven} subscribes. Needs the optional peer dependency `@opentelemetry/api`.
 *
 * Every metric, its unit and attributes are listed in `docs/observability.md`.
 *
 * @module
 */

import { type Attributes, type Meter, metrics } from '@opentelemetry/api'
import {
  type BrokerStateMessage,
  CHANNELS,
  diagnosticsAvailable,
  type FeedStateName,
  type LimitRejectMessage,
  type OverflowMessage,
  type StreamCloseMessage,
  type StreamErrorMessage,
  type StreamEventMessage,
  type StreamInfo,
  type StreamOpenMessage,
  type StreamWriteMessage,
  subscribeChannel,
} from '../diagnostics/channels.ts'
import { checkOptionNames, SseError } from '../errors.ts'

/** Options of {@link instrumentOven}. */
export interface InstrumentOvenOptions {
  /**
   * The meter the instruments are made on.
   * @defaultValue `metrics.getMeter('oven-sse')` from the global `@opentelemetry/api`
   */
  meter?: Meter | undefined
}

/** What {@link instrumentOven} returns. */
export interface OvenInstrumentation {
  /** Stops recording: unsubscribes from every channel. Calling it again does nothing. */
  close(): void
}

/** Bucket bounds of the delivery latency histogram, in ms. */
const LATENCY_BUCKETS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]
const DURATION_BUCKETS = [1000, 10_000, 60_000, 300_000, 1_800_000, 3_600_000, 14_400_000]

/** What one observed stream has taken from its source and not yet written. */
interface Unwritten {
  events: number
  /** Publish times of the broadcast events among them. */
  publishedAt: number[]
}

/**
 * Records Oven's metrics on an OpenTelemetry meter: open streams, closes by reason, stream
 * durations, errors, events and bytes written, drops by reason, connection-limit rejections,
 * the state of each broadcaster's feed from its broker, and the broadcast delivery latency.
 * Call it once at startup; streams opened before it are not counted as open.
 *
 * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` for an unknown option, or when the runtime
 *   has no `node:diagnostics_channel` (Node before 20.16, Workers without `nodejs_compat`).
 *
 * @example
 * ```ts
 * import { metrics } from '@opentelemetry/api'
 * import { instrumentOven } from 'oven-sse/otel'
 *
 * const instrumentation = instrumentOven({ meter: metrics.getMeter('my-service') })
 * // at shutdown:
 * instrumentation.close()
 * ```
 */
export function instrumentOven(options: InstrumentOvenOptions = {}): OvenInstrumentation {
  checkOptionNames('instrumentOven', options, ['meter'])
  if (!diagnosticsAvailable) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      'instrumentOven needs node:diagnostics_channel through process.getBuiltinModule ' +
        '(Node >= 20.16, Bun, Deno, Workers with nodejs_compat); this runtime has none.',
    )
  }
  const meter = options.meter ?? metrics.getMeter('oven-sse')

  const open = meter.createUpDownCounter('oven_sse.streams.open', {
    description: 'Event streams open now (opened since instrumentation).',
    unit: '{stream}',
  })
  const closed = meter.createCounter('oven_sse.streams.closed', {
    description:
      'Event streams ended, by reason (done, disconnect, shutdown, timeout, error, rejected).',
    unit: '{stream}',
  })
  const duration = meter.createHistogram('oven_sse.stream.duration', {
    description: 'How long event streams stayed open, from open to close.',
    unit: 'ms',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  })
  const errors = meter.createCounter('oven_sse.stream.errors', {
    description: 'Event streams ended by an error of their source.',
    unit: '{error}',
  })
  const events = meter.createCounter('oven_sse.events.sent', {
    description: 'Items of event-stream sources written to the transport (pings excluded).',
    unit: '{event}',
  })
  const bytes = meter.createCounter('oven_sse.bytes.sent', {
    description: 'Bytes written to event-stream transports (events, pings, opening comments).',
    unit: 'By',
  })
  const drops = meter.createCounter('oven_sse.drops', {
    description:
      'Drops by reason: send-timeout and overflow-disconnect drop a client, ' +
      'overflow-drop-oldest drops an event.',
    unit: '{drop}',
  })
  const rejections = meter.createCounter('oven_sse.limit.rejections', {
    description: 'Streams turned away by a ConnectionLimiter (503), by limit (max, maxPerKey).',
    unit: '{stream}',
  })
  const feeds = meter.createUpDownCounter('oven_sse.broker.feeds', {
    description:
      "Broadcasters by the state of their broker's live feed (live, interrupted, catching-up).",
    unit: '{broadcaster}',
  })
  const interruptions = meter.createCounter('oven_sse.broker.interruptions', {
    description: 'Times a broadcaster lost live delivery from its broker.',
    unit: '{interruption}',
  })
  const resyncs = meter.createCounter('oven_sse.broker.resyncs', {
    description: 'Times a broadcaster caught up after an interruption and went live again.',
    unit: '{resync}',
  })
  const latency = meter.createHistogram('oven_sse.broadcast.delivery.duration', {
    description:
      'From Broadcaster.publish() to the write of that event on a subscriber stream, for ' +
      'events published on this process and delivered live.',
    unit: 'ms',
    advice: { explicitBucketBoundaries: LATENCY_BUCKETS },
  })

  // Streams seen opening: only they are counted down when they close.
  const opened = new WeakSet<StreamInfo>()
  const unwritten = new WeakMap<StreamInfo, Unwritten>()
  const feedStates = new WeakMap<object, FeedStateName>()
  const attributes = new Map<string, Attributes>()
  const attrs = (key: string, value: string): Attributes => {
    const name = `${key}=${value}`
    let found = attributes.get(name)
    if (!found) attributes.set(name, (found = { [key]: value }))
    return found
  }

  const listeners: Array<[string, (message: never) => void]> = [
    [
      CHANNELS.streamOpen,
      ({ stream }: StreamOpenMessage) => {
        opened.add(stream)
        open.add(1)
      },
    ],
    [
      CHANNELS.streamClose,
      ({ stream, reason, durationMs }: StreamCloseMessage) => {
        closed.add(1, attrs('reason', reason))
        unwritten.delete(stream)
        if (!opened.delete(stream)) return
        open.add(-1)
        if (durationMs !== undefined) duration.record(durationMs)
      },
    ],
    [CHANNELS.streamError, (_: StreamErrorMessage) => errors.add(1)],
    [
      CHANNELS.streamEvent,
      ({ stream, publishedAt }: StreamEventMessage) => {
        let pending = unwritten.get(stream)
        if (!pending) unwritten.set(stream, (pending = { events: 0, publishedAt: [] }))
        pending.events++
        // A replay from the history to a client that resumes carries its publish time too:
        // only events published while the stream was open were delivered live.
        if (publishedAt !== undefined && publishedAt >= (stream.openedAt ?? Infinity)) {
          pending.publishedAt.push(publishedAt)
        }
      },
    ],
    [
      CHANNELS.streamWrite,
      ({ stream, bytes: size }: StreamWriteMessage) => {
        bytes.add(size)
        const pending = unwritten.get(stream)
        if (!pending || pending.events === 0) return
        events.add(pending.events)
        pending.events = 0
        if (pending.publishedAt.length === 0) return
        const writtenAt = performance.now()
        for (const at of pending.publishedAt) latency.record(writtenAt - at)
        pending.publishedAt.length = 0
      },
    ],
    [CHANNELS.sendTimeout, () => drops.add(1, attrs('reason', 'send-timeout'))],
    [
      CHANNELS.overflow,
      ({ policy }: OverflowMessage) => drops.add(1, attrs('reason', `overflow-${policy}`)),
    ],
    [
      CHANNELS.limitReject,
      ({ limit }: LimitRejectMessage) => rejections.add(1, attrs('limit', limit)),
    ],
    [
      CHANNELS.brokerState,
      ({ broadcaster, state, previous }: BrokerStateMessage) => {
        const known = feedStates.get(broadcaster)
        if (known !== undefined) feeds.add(-1, attrs('state', known))
        if (state === 'closed') feedStates.delete(broadcaster)
        else {
          // A broadcaster made before instrumentation is known from its first change on.
          feeds.add(1, attrs('state', state))
          feedStates.set(broadcaster, state)
        }
        if (state === 'interrupted' && previous === 'live') interruptions.add(1)
        if (state === 'live' && previous === 'catching-up') resyncs.add(1)
      },
    ],
  ]
  const unsubscribes = listeners.map(([name, listener]) =>
    subscribeChannel(name, listener as (message: unknown) => void),
  )
  let active = true
  return {
    close() {
      if (!active) return
      active = false
      for (const unsubscribe of unsubscribes) unsubscribe?.()
    },
  }
}
