/**
 * 05 — Metrics for Prometheus: what an operator watches, scraped from `/metrics`.
 *
 * `instrumentOven` (from `oven-sse/otel`) records Oven's metrics on an OpenTelemetry meter:
 * open streams, events and bytes sent, closes by reason, drops, limit rejections, the broker's
 * state and the broadcast delivery latency. Here the meter's reader is the OpenTelemetry
 * Prometheus exporter, served on this server's own `/metrics` route (no second port). Any
 * other OpenTelemetry exporter (OTLP to a collector, …) works the same way.
 *
 * Run:  npx tsx examples/05_prometheus_metrics.ts
 * Then: curl -N http://127.0.0.1:8000/events                 (in two terminals)
 *       curl -X POST 'http://127.0.0.1:8000/publish?count=5'
 *       curl http://127.0.0.1:8000/metrics
 *
 * Endpoints:
 *   GET  /events          the `ticks` topic, live (a Broadcaster subscription)
 *   GET  /stream?n=N      N events, then the stream ends (reason `done`)
 *   POST /publish?count=K publishes K events on `ticks` -> 202 `{"ids"}`
 *   GET  /metrics         Prometheus text format
 *
 * Environment: PORT (default 8000).
 */

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import { Broadcaster, ConnectionLimiter, sendEventStream } from '../src/node.ts'
import { instrumentOven } from '../src/otel.ts'

// The exporter is a metric reader that renders Prometheus text on demand; with
// `preventServerStart` it opens no port of its own: `/metrics` below serves it.
const exporter = new PrometheusExporter({ preventServerStart: true })
const provider = new MeterProvider({ readers: [exporter] })
const instrumentation = instrumentOven({ meter: provider.getMeter('oven-sse') })

const hub = new Broadcaster()
const limit = new ConnectionLimiter({ max: 1000 })

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost')
  if (req.method === 'GET' && url.pathname === '/events') {
    void sendEventStream(req, res, (ctx) => hub.subscribe('ticks', ctx), { limit })
  } else if (req.method === 'GET' && url.pathname === '/stream') {
    const n = Math.min(Number(url.searchParams.get('n') ?? 10) || 0, 10_000)
    void sendEventStream(
      req,
      res,
      function* () {
        for (let i = 0; i < n; i++) yield { event: 'count', data: String(i) }
      },
      { limit },
    )
  } else if (req.method === 'POST' && url.pathname === '/publish') {
    const count = Math.min(Number(url.searchParams.get('count') ?? 1) || 0, 1000)
    void (async () => {
      const ids: string[] = []
      for (let i = 0; i < count; i++) {
        ids.push(await hub.publish('ticks', { event: 'tick', data: { n: i, at: Date.now() } }))
      }
      res.writeHead(202, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ids }))
    })().catch((error: unknown) => {
      res.writeHead(503).end(String(error))
    })
  } else if (req.method === 'GET' && url.pathname === '/metrics') {
    exporter.getMetricsRequestHandler(req, res)
  } else {
    res.writeHead(404).end()
  }
})

server.listen(Number(process.env.PORT ?? 8000), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(`listening on http://127.0.0.1:${port}`)
})

process.once('SIGINT', () => {
  instrumentation.close()
  void hub.close()
  server.close()
  void provider.shutdown()
})
