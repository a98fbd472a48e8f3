/**
 * The demo's operator view: Oven's OpenTelemetry metrics (`instrumentOven` from `oven-sse/otel`)
 * read by the OpenTelemetry Prometheus exporter, as production would scrape them. The same
 * reading serves `GET /metrics` (Prometheus text) and the page's "Operator view" panel (a
 * `metrics` event every STATS_MS), so the page shows what a dashboard would.
 */

import type { IncomingMessage, ServerResponse } from 'node:http'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { type Histogram, MeterProvider } from '@opentelemetry/sdk-metrics'
import { instrumentOven } from '../../src/otel.ts'

const exporter = new PrometheusExporter({ preventServerStart: true })
const provider = new MeterProvider({ readers: [exporter] })
const instrumentation = instrumentOven({ meter: provider.getMeter('oven-sse') })

/** Serves Prometheus text: `curl http://127.0.0.1:8000/metrics`. */
export function serveMetrics(req: IncomingMessage, res: ServerResponse): void {
  exporter.getMetricsRequestHandler(req, res)
}

/** Stops recording (at shutdown). */
export async function stopMetrics(): Promise<void> {
  instrumentation.close()
  await provider.shutdown()
}

/** What the page's operator panel shows; totals since the server started. */
export interface OperatorView {
  openStreams: number
  eventsSent: number
  bytesSent: number
  /** Closed streams by reason (`done`, `disconnect`, `timeout`, …: the `onClose` reasons). */
  closed: Record<string, number>
  /** Drops by reason (`send-timeout`, `overflow-disconnect`, `overflow-drop-oldest`). */
  drops: Record<string, number>
  /** Broadcasters by the state of their broker feed (`live`, `interrupted`, `catching-up`). */
  broker: Record<string, number>
  brokerInterruptions: number
  /** Broadcast delivery latency, publish to write, in ms. */
  latency: { count: number; meanMs: number | null; p99UnderMs: number | null; maxMs: number | null }
}

/** Reads the metrics now (a collection, as a scrape does) into an {@link OperatorView}. */
export async function operatorView(): Promise<OperatorView> {
  const { resourceMetrics } = await exporter.collect()
  const view: OperatorView = {
    openStreams: 0,
    eventsSent: 0,
    bytesSent: 0,
    closed: {},
    drops: {},
    broker: {},
    brokerInterruptions: 0,
    latency: { count: 0, meanMs: null, p99UnderMs: null, maxMs: null },
  }
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const { descriptor, dataPoints } of scope.metrics) {
      for (const { attributes, value } of dataPoints) {
        const number = value as number
        const label = String(Object.values(attributes)[0] ?? '')
        switch (descriptor.name) {
          case 'oven_sse.streams.open':
            view.openStreams = number
            break
          case 'oven_sse.events.sent':
            view.eventsSent = number
            break
          case 'oven_sse.bytes.sent':
            view.bytesSent = number
            break
          case 'oven_sse.streams.closed':
            view.closed[label] = number
            break
          case 'oven_sse.drops':
            view.drops[label] = number
            break
          case 'oven_sse.broker.feeds':
            if (number !== 0) view.broker[label] = number
            break
          case 'oven_sse.broker.interruptions':
            view.brokerInterruptions = number
            break
          case 'oven_sse.broadcast.delivery.duration':
            view.latency = summarize(value as Histogram)
            break
        }
      }
    }
  }
  return view
}

/** Count, mean, max, and the bucket bound under which 99 % of deliveries fall. */
function summarize(histogram: Histogram): OperatorView['latency'] {
  const { count, sum = 0, max, buckets } = histogram
  if (count === 0) return { count, meanMs: null, p99UnderMs: null, maxMs: null }
  let seen = 0
  let p99: number | null = null
  for (const [i, bound] of buckets.boundaries.entries()) {
    seen += buckets.counts[i] ?? 0
    if (seen >= count * 0.99) {
      p99 = bound
      break
    }
  }
  const round = (ms: number) => Math.round(ms * 100) / 100
  return {
    count,
    meanMs: round(sum / count),
    p99UnderMs: p99 ?? (max === undefined ? null : round(max)),
    maxMs: max === undefined ? null : round(max),
  }
}
