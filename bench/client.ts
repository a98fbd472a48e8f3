/**
 * The client benchmark: `oven-sse/client` beside `eventsource` (v4, fetch-based) and
 * `@microsoft/fetch-event-source`, in one run, each in a process of its own, against the same
 * server (the plain `res.write` contestant, in another process):
 *
 * - **parse** — one client reads N events of 64 B and of 4 KiB: events/s received and parsed,
 *   counted and checked (every payload's index and length) in the client;
 * - **memory** — 1 000 clients open on an idle stream: heap and RSS per client after GC, against
 *   the same process's baseline before any client.
 *
 * Repetitions interleave the clients (the order rotates); tables give the median and ± half the
 * min–max range. Run: `npx tsx bench/client.ts [--quick] [--reps N]`, or as the `client`
 * scenario of `npm run bench -- --scenario client`.
 *
 * Notes on the peers: fetch-event-source is written for browsers (it reads `window` and
 * `document`); here it runs with `openWhenHidden: true`, `window` aliased to `globalThis` and a
 * stub `document` (no visibility changes).
 * All three use the runtime's `fetch` (undici in Node) for the connection.
 */

import { parseArgs } from 'node:util'
import { Child, sibling } from './lib/ipc.ts'
import { summarize } from './lib/stats.ts'

export const CLIENTS = ['oven', 'eventsource', 'fetch-event-source'] as const
export type ClientId = (typeof CLIENTS)[number]

/** The labels of the tables. */
const LABELS: Record<ClientId, string> = {
  oven: 'oven-sse/client',
  eventsource: 'eventsource 4',
  'fetch-event-source': '@microsoft/fetch-event-source 2',
}

export interface ClientPlan {
  parse: { cases: Array<{ n: number; size: number }>; reps: number }
  memory: { clients: number; reps: number }
}

export const CLIENT_FULL: ClientPlan = {
  parse: {
    cases: [
      { n: 100_000, size: 64 },
      { n: 10_000, size: 4096 },
    ],
    reps: 5,
  },
  memory: { clients: 1000, reps: 3 },
}
export const CLIENT_QUICK: ClientPlan = {
  parse: {
    cases: [
      { n: 20_000, size: 64 },
      { n: 2_000, size: 4096 },
    ],
    reps: 1,
  },
  memory: { clients: 1000, reps: 1 },
}

const worker = () => new Child(sibling(import.meta.url, './client-worker.ts'), [], ['--expose-gc'])

const spread = (values: number[]) => (Math.max(...values) - Math.min(...values)) / 2

/** Runs the client benchmark and returns its Markdown tables. */
export async function runClientBench(
  plan: ClientPlan,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<{ markdown: string; failures: string[] }> {
  const server = new Child(sibling(import.meta.url, './contestants/plain.ts'), [], ['--expose-gc'])
  const failures: string[] = []
  const rate = new Map<string, number[]>()
  const memory = new Map<string, { heap: number[]; rss: number[] }>()
  try {
    const port = await server.call<number>('start')
    const workers = new Map(CLIENTS.map((id) => [id, worker()]))
    try {
      // Warm-up: every client's code paths compiled before anything is recorded.
      for (const id of CLIENTS) {
        for (const { n, size } of plan.parse.cases) {
          await workers
            .get(id)!
            .call('parse', { client: id, port, n: Math.ceil(n / 4), size }, 120_000)
        }
      }
      for (let rep = 0; rep < plan.parse.reps; rep++) {
        const order = [...CLIENTS.slice(rep % 3), ...CLIENTS.slice(0, rep % 3)]
        for (const { n, size } of plan.parse.cases) {
          for (const id of order) {
            const r = await workers
              .get(id)!
              .call<{ ms: number; error?: string }>('parse', { client: id, port, n, size }, 120_000)
            if (r.error) failures.push(`${id} parse ${size} B: ${r.error}`)
            const perSecond = (n / r.ms) * 1000
            const key = `${id}|${size}`
            rate.set(key, [...(rate.get(key) ?? []), perSecond])
            log(
              `client parse ${String(size).padStart(4)} B ${id.padEnd(18)} ${Math.round(perSecond).toLocaleString('en').padStart(10)} ev/s`,
            )
          }
        }
      }
    } finally {
      await Promise.all([...workers.values()].map((w) => w.stop()))
    }
    const count = plan.memory.clients
    for (let rep = 0; rep < plan.memory.reps; rep++) {
      for (const id of CLIENTS) {
        // A fresh process each time: memory is measured against its own baseline.
        const child = worker()
        try {
          const r = await child.call<{ heapKiB: number; rssKiB: number; error?: string }>(
            'memory',
            { client: id, port, count },
            120_000,
          )
          if (r.error) failures.push(`${id} memory: ${r.error}`)
          const entry = memory.get(id) ?? { heap: [], rss: [] }
          entry.heap.push(r.heapKiB)
          entry.rss.push(r.rssKiB)
          memory.set(id, entry)
          log(
            `client memory ${count} ${id.padEnd(18)} heap ${r.heapKiB.toFixed(2)} KiB/client rss ${r.rssKiB.toFixed(2)} KiB/client`,
          )
        } finally {
          await child.stop()
        }
      }
    }
  } finally {
    await server.stop()
  }
  const lines = [
    '| client | events/s, 64 B | events/s, 4 KiB | heap KiB per open client | RSS KiB per open client |',
    '| --- | ---: | ---: | ---: | ---: |',
  ]
  const fmt = (values: number[] | undefined, digits = 0) =>
    values && values.length > 0
      ? `${summarize.median(values).toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits })} ± ${spread(values).toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits })}`
      : '—'
  for (const id of CLIENTS) {
    const sizes = plan.parse.cases.map(({ size }) => rate.get(`${id}|${size}`))
    lines.push(
      `| ${LABELS[id]} | ${fmt(sizes[0])} | ${fmt(sizes[1])} | ${fmt(memory.get(id)?.heap, 1)} | ${fmt(memory.get(id)?.rss, 1)} |`,
    )
  }
  return { markdown: lines.join('\n'), failures }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '-')) {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, reps: { type: 'string' } },
  })
  const plan = structuredClone(values.quick ? CLIENT_QUICK : CLIENT_FULL)
  if (values.reps) plan.parse.reps = plan.memory.reps = Number(values.reps)
  const { markdown, failures } = await runClientBench(plan)
  process.stdout.write(`${markdown}\n`)
  if (failures.length > 0) {
    process.stderr.write(`\nCorrectness failures:\n${failures.map((f) => `- ${f}`).join('\n')}\n`)
    process.exitCode = 1
  }
}
