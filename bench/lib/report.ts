/**
 * Results: the JSON record, the Markdown tables (medians, spread, ratios to the plain loop),
 * the target checks and the SVG chart that docs/benchmarks.md shows.
 */

import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem, type } from 'node:os'
import { dirname } from 'node:path'
import { BASELINE } from './contestants.ts'
import { sibling } from './ipc.ts'
import { type Summary, summarize } from './stats.ts'

/** One measured run of one contestant. */
export interface RunRecord {
  scenario: 'stream' | 'idle' | 'subscribers' | 'broadcast'
  contestant: string
  rep: number
  params: Record<string, number>
  metrics: Record<string, number>
  /** Set when the client did not receive exactly what was sent; the run is left out. */
  error: string | undefined
}

/** Everything one `npm run bench` produced. */
export interface Results {
  meta: ReturnType<typeof collectMeta>
  contestants: Array<{ id: string; label: string; oven: boolean }>
  records: RunRecord[]
}

function version(path: string): string {
  try {
    return (JSON.parse(readFileSync(sibling(import.meta.url, path), 'utf8')) as { version: string })
      .version
  } catch {
    return 'missing'
  }
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, {
      encoding: 'utf8',
      cwd: sibling(import.meta.url, '../..'),
    }).trim()
  } catch {
    return 'unknown'
  }
}

/** Machine, versions and the command: what a reader needs to reproduce a table. */
export function collectMeta(run: { command: string; plan: unknown; seconds: number }) {
  const cpu = cpus()
  return {
    date: new Date().toISOString(),
    command: run.command,
    seconds: Math.round(run.seconds),
    plan: run.plan,
    machine: {
      cpu: cpu[0]?.model ?? 'unknown',
      cores: cpu.length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      os: `${type()} ${release()}`,
      loadAverageAtEnd: loadavg().map((x) => Math.round(x * 100) / 100),
    },
    versions: {
      node: process.version,
      'oven-sse': `${version('../../package.json')} (${git(['rev-parse', '--short', 'HEAD'])}${
        git(['status', '--porcelain', '--', 'src']) === '' ? '' : ' + uncommitted changes in src'
      })`,
      'better-sse': version('../node_modules/better-sse/package.json'),
      '@fastify/sse': version('../node_modules/@fastify/sse/package.json'),
      fastify: version('../node_modules/fastify/package.json'),
      hono: version('../node_modules/hono/package.json'),
      '@hono/node-server': version('../node_modules/@hono/node-server/package.json'),
    },
  }
}

/** One row of a table: a contestant's summaries for each metric of one case. */
interface Row {
  contestant: string
  label: string
  runs: number
  errors: string[]
  metrics: Record<string, Summary>
}

/** Groups records into cases (scenario + params) and rows (contestants). */
function aggregate(results: Results) {
  const cases = new Map<string, { scenario: string; params: Record<string, number>; rows: Row[] }>()
  for (const info of results.contestants) {
    for (const record of results.records) {
      if (record.contestant !== info.id) continue
      const key = `${record.scenario} ${JSON.stringify(record.params)}`
      let entry = cases.get(key)
      if (!entry) {
        entry = { scenario: record.scenario, params: record.params, rows: [] }
        cases.set(key, entry)
      }
      let row = entry.rows.find((r) => r.contestant === info.id)
      if (!row) {
        row = { contestant: info.id, label: info.label, runs: 0, errors: [], metrics: {} }
        entry.rows.push(row)
      }
      row.runs++
      if (record.error) row.errors.push(record.error)
    }
  }
  for (const entry of cases.values()) {
    for (const row of entry.rows) {
      const good = results.records.filter(
        (r) =>
          !r.error &&
          r.contestant === row.contestant &&
          r.scenario === entry.scenario &&
          JSON.stringify(r.params) === JSON.stringify(entry.params),
      )
      const names = new Set(good.flatMap((r) => Object.keys(r.metrics)))
      for (const name of names) {
        row.metrics[name] = summarize.summary(good.map((r) => r.metrics[name]!))
      }
    }
  }
  return [...cases.values()]
}

function fmt(value: number): string {
  if (!Number.isFinite(value)) return '—'
  if (Math.abs(value) >= 10_000) return Math.round(value).toLocaleString('en').replace(/,/g, ' ')
  if (Math.abs(value) >= 100) return value.toFixed(0)
  if (Math.abs(value) >= 10) return value.toFixed(1)
  return value.toFixed(2)
}

interface Column {
  metric: string
  title: string
  /** Show the ratio to the baseline beside it. */
  ratio: boolean
}

const COLUMNS: Record<string, Column[]> = {
  stream: [
    { metric: 'eventsPerSec', title: 'events/s', ratio: true },
    { metric: 'cpuPerEvent', title: 'server CPU µs/event', ratio: true },
  ],
  idle: [
    { metric: 'heapKiB', title: 'heap KiB/conn', ratio: true },
    { metric: 'rssKiB', title: 'RSS KiB/conn', ratio: true },
  ],
  subscribers: [
    { metric: 'heapKiB', title: 'heap KiB/conn', ratio: true },
    { metric: 'rssKiB', title: 'RSS KiB/conn', ratio: true },
  ],
  broadcast: [
    { metric: 'cpuPerDelivery', title: 'server CPU µs/delivery', ratio: true },
    { metric: 'p50Ms', title: 'p50 latency ms', ratio: false },
    { metric: 'p99Ms', title: 'p99 latency ms', ratio: false },
    { metric: 'allDeliveredMs', title: 'all delivered ms', ratio: true },
  ],
}

function caseTitle(scenario: string, p: Record<string, number>): string {
  const n = (x: number | undefined) => (x ?? 0).toLocaleString('en').replace(/,/g, ' ')
  if (scenario === 'stream')
    return `One client, ${n(p.n)} × ${p.size === 4096 ? '4 KiB' : `${p.size} B`} events`
  if (scenario === 'idle') return `${n(p.connections)} idle connections (after GC)`
  if (scenario === 'subscribers') return `${n(p.connections)} idle broadcast subscribers (after GC)`
  const topics = p.topics === undefined ? '' : ` on ${n(p.topics)} topics`
  return `Broadcast of ${p.events} × ${p.size} B events to ${n(p.clients)} clients${topics}`
}

function table(entry: ReturnType<typeof aggregate>[number]): string {
  const columns = COLUMNS[entry.scenario]!
  const base = entry.rows.find((r) => r.contestant === BASELINE)
  const head = [
    'contestant',
    ...columns.flatMap((c) => (c.ratio ? [c.title, '× limit'] : [c.title])),
  ]
  const lines = [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
  ]
  for (const row of entry.rows) {
    const cells = [row.contestant === BASELINE ? `**${row.label}**` : row.label]
    for (const column of columns) {
      const s = row.metrics[column.metric]
      cells.push(s ? `${fmt(s.median)} ±${s.spreadPct.toFixed(0)}%` : 'failed')
      if (column.ratio) {
        const b = base?.metrics[column.metric]
        cells.push(s && b ? `${(s.median / b.median).toFixed(2)}×` : '—')
      }
    }
    if (row.errors.length > 0)
      cells[0] += ` (${row.errors.length}/${row.runs} runs failed the check)`
    lines.push(`| ${cells.join(' | ')} |`)
  }
  return `#### ${caseTitle(entry.scenario, entry.params)}\n\n${lines.join('\n')}\n`
}

/** A target from the issues, checked against this run. */
interface Check {
  what: string
  target: string
  measured: string
  pass: boolean | undefined
}

function ratioOf(
  cases: ReturnType<typeof aggregate>,
  scenario: string,
  match: (p: Record<string, number>) => boolean,
  contestant: string,
  metric: string,
  other = BASELINE,
): number | undefined {
  const entry = cases.find((c) => c.scenario === scenario && match(c.params))
  const a = entry?.rows.find((r) => r.contestant === contestant)?.metrics[metric]
  const b = entry?.rows.find((r) => r.contestant === other)?.metrics[metric]
  return a && b ? a.median / b.median : undefined
}

function checks(cases: ReturnType<typeof aggregate>): Check[] {
  const out: Check[] = []
  const add = (what: string, ratio: number | undefined, op: '≥' | '≤', limit: number) =>
    out.push({
      what,
      target: `${op} ${limit}×`,
      measured: ratio === undefined ? 'not measured' : `${ratio.toFixed(2)}×`,
      pass: ratio === undefined ? undefined : op === '≥' ? ratio >= limit : ratio <= limit,
    })
  // The largest count a scenario ran, or "—" (and no case matches) when it did not run.
  const maxOf = (scenario: string, key: string): number | '—' => {
    const counts = cases.filter((c) => c.scenario === scenario).map((c) => c.params[key] ?? 0)
    return counts.length === 0 ? '—' : Math.max(...counts)
  }
  for (const size of [64, 4096]) {
    const label = size === 64 ? '64 B' : '4 KiB'
    add(
      `sendEventStream events/s, ${label}`,
      ratioOf(cases, 'stream', (p) => p.size === size, 'oven-node', 'eventsPerSec'),
      '≥',
      0.95,
    )
    add(
      `sendEventStream CPU/event, ${label}`,
      ratioOf(cases, 'stream', (p) => p.size === size, 'oven-node', 'cpuPerEvent'),
      '≤',
      1.1,
    )
  }
  add(
    'EventSourceResponse events/s, 64 B',
    ratioOf(cases, 'stream', (p) => p.size === 64, 'oven-web', 'eventsPerSec'),
    '≥',
    0.6,
  )
  const most = maxOf('idle', 'connections')
  add(
    `sendEventStream heap/idle connection at ${most}`,
    ratioOf(cases, 'idle', (p) => p.connections === most, 'oven-node', 'heapKiB'),
    '≤',
    1.05,
  )
  add(
    `sendEventStream RSS/idle connection at ${most}`,
    ratioOf(cases, 'idle', (p) => p.connections === most, 'oven-node', 'rssKiB'),
    '≤',
    1.05,
  )
  const clients = maxOf('broadcast', 'clients')
  const oneTopic = (p: Record<string, number>) => p.clients === clients && p.topics === undefined
  add(
    `sendEventStream broadcast CPU/delivery at ${clients}`,
    ratioOf(cases, 'broadcast', oneTopic, 'oven-node', 'cpuPerDelivery'),
    '≤',
    1.0,
  )
  // Issue #14: the shapes users run.
  for (const metric of ['p50Ms', 'p99Ms']) {
    add(
      `sendEventStream broadcast ${metric.slice(0, 3)} latency at ${clients}`,
      ratioOf(cases, 'broadcast', oneTopic, 'oven-node', metric),
      '≤',
      1.0,
    )
  }
  const subscribers = maxOf('subscribers', 'connections')
  for (const [metric, label] of [
    ['heapKiB', 'heap'],
    ['rssKiB', 'RSS'],
  ] as const) {
    add(
      `sendEventStream ${label}/idle subscriber at ${subscribers}`,
      ratioOf(cases, 'subscribers', (p) => p.connections === subscribers, 'oven-node', metric),
      '≤',
      1.05,
    )
  }
  // Burst fan-out over many topics: a publish per topic, a few subscribers each.
  const manyTopics = (p: Record<string, number>) => p.clients === clients && p.topics === 1000
  add(
    `sendEventStream broadcast CPU/delivery, ${clients} on 1 000 topics`,
    ratioOf(cases, 'broadcast', manyTopics, 'oven-node', 'cpuPerDelivery'),
    '≤',
    1.0,
  )
  for (const metric of ['p50Ms', 'p99Ms']) {
    add(
      `sendEventStream broadcast ${metric.slice(0, 3)} latency, ${clients} on 1 000 topics`,
      ratioOf(cases, 'broadcast', manyTopics, 'oven-node', metric),
      '≤',
      1.0,
    )
  }
  // The web path within 1.3x of the node path (ratios to sendEventStream, not to the loop).
  add(
    `EventSourceResponse ÷ sendEventStream heap/idle subscriber at ${subscribers}`,
    ratioOf(
      cases,
      'subscribers',
      (p) => p.connections === subscribers,
      'oven-web',
      'heapKiB',
      'oven-node',
    ),
    '≤',
    1.3,
  )
  for (const [label, filter] of [
    [`at ${clients}`, oneTopic],
    [`with ${clients} on 1 000 topics`, manyTopics],
  ] as const) {
    add(
      `EventSourceResponse ÷ sendEventStream broadcast CPU/delivery ${label}`,
      ratioOf(cases, 'broadcast', filter, 'oven-web', 'cpuPerDelivery', 'oven-node'),
      '≤',
      1.3,
    )
  }
  const large = (p: Record<string, number>) => p.size === 4096
  add(
    'sendEventStream events/s, 4 KiB, against pre-encoded frames',
    ratioOf(cases, 'stream', large, 'oven-node', 'eventsPerSec', 'plain-frames'),
    '≥',
    0.95,
  )
  add(
    'sendEventStream CPU/event, 4 KiB, against pre-encoded frames',
    ratioOf(cases, 'stream', large, 'oven-node', 'cpuPerEvent', 'plain-frames'),
    '≤',
    1.1,
  )
  return out
}

/** Like-for-like comparisons for "Oven ahead on every row": Oven contestant, then peers. */
const PAIRS: Array<[string, string]> = [
  ['oven-node', 'better-sse'],
  ['oven-node', 'hono'],
  ['oven-node', 'fastify-sse'],
  ['oven-web', 'hono'],
  ['oven-fastify', 'fastify-sse'],
]

/** One row per case and metric; one column per pair: Oven's value over the peer's. */
function aheadTable(cases: ReturnType<typeof aggregate>): { lines: string[]; behind: number } {
  const names = new Map<string, string>()
  for (const entry of cases) for (const row of entry.rows) names.set(row.contestant, row.label)
  const pairs = PAIRS.filter(([a, b]) => names.has(a) && names.has(b))
  const short = (id: string) => (names.get(id) ?? id).replace(/ \(.*\)$/, '').replace(/^Oven /, '')
  const lines = [
    `| row | ${pairs.map(([a, b]) => `${short(a)} ÷ ${short(b)}`).join(' | ')} |`,
    `|---|${pairs.map(() => '---:').join('|')}|`,
  ]
  let behind = 0
  for (const entry of cases) {
    for (const column of COLUMNS[entry.scenario]!) {
      if (!column.ratio) continue
      const higherIsBetter = column.metric === 'eventsPerSec'
      const cells = pairs.map(([oven, peer]) => {
        const r = ratioOf(
          cases,
          entry.scenario,
          (p) => p === entry.params,
          oven,
          column.metric,
          peer,
        )
        if (r === undefined) return '—'
        const ahead = higherIsBetter ? r > 1 : r < 1
        if (!ahead) behind++
        return ahead ? `${r.toFixed(2)}×` : `**${r.toFixed(2)}×**`
      })
      lines.push(
        `| ${caseTitle(entry.scenario, entry.params)}: ${column.title} | ${cells.join(' | ')} |`,
      )
    }
  }
  return { lines, behind }
}

const PANELS = [
  {
    scenario: 'stream',
    key: 'size',
    pick: 'min',
    metric: 'eventsPerSec',
    title: 'events/s (higher is better)',
  },
  {
    scenario: 'stream',
    key: 'size',
    pick: 'max',
    metric: 'eventsPerSec',
    title: 'events/s (higher is better)',
  },
  {
    scenario: 'idle',
    key: 'connections',
    pick: 'max',
    metric: 'rssKiB',
    title: 'RSS per connection (lower is better)',
  },
  {
    scenario: 'broadcast',
    key: 'clients',
    pick: 'max',
    metric: 'cpuPerDelivery',
    title: 'server CPU per delivery (lower is better)',
  },
] as const

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** Horizontal bars of each contestant's ratio to the plain loop, one panel per headline. */
function chart(results: Results, cases: ReturnType<typeof aggregate>): string {
  const width = 960
  const labelWidth = 330
  const barMax = width - labelWidth - 120
  const rowHeight = 22
  const parts: string[] = []
  let y = 30
  parts.push(
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">Oven and peers, ratio to a plain res.write loop (1.00× = the limit)</text>`,
  )
  for (const panel of PANELS) {
    const candidates = cases.filter((c) => c.scenario === panel.scenario)
    if (candidates.length === 0) continue
    const values = candidates.map((c) => c.params[panel.key] ?? 0)
    const wanted = panel.pick === 'min' ? Math.min(...values) : Math.max(...values)
    const entry = candidates.find((c) => c.params[panel.key] === wanted)!
    const base = entry.rows.find((r) => r.contestant === BASELINE)?.metrics[panel.metric]?.median
    if (!base) continue
    y += 24
    parts.push(
      `<text x="10" y="${y}" font-size="13" font-weight="bold">${escapeXml(`${caseTitle(entry.scenario, entry.params)}: ${panel.title}`)}</text>`,
    )
    y += 8
    const ratios = entry.rows.map((r) => (r.metrics[panel.metric]?.median ?? Number.NaN) / base)
    const top = Math.max(1.5, ...ratios.filter(Number.isFinite))
    entry.rows.forEach((row, i) => {
      const ratio = ratios[i]!
      const oven = results.contestants.find((c) => c.id === row.contestant)?.oven
      const color = row.contestant === BASELINE ? '#888' : oven ? '#d9622b' : '#4a7ab5'
      const w = Number.isFinite(ratio) ? Math.max(1, (ratio / top) * barMax) : 0
      parts.push(
        `<text x="${labelWidth - 8}" y="${y + 15}" text-anchor="end" font-size="12">${escapeXml(row.label)}</text>`,
        `<rect x="${labelWidth}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowHeight - 6}" fill="${color}"/>`,
        `<text x="${labelWidth + w + 6}" y="${y + 15}" font-size="12">${Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : 'failed'}</text>`,
      )
      y += rowHeight
    })
    const oneX = labelWidth + barMax / top
    parts.push(
      `<line x1="${oneX.toFixed(1)}" y1="${y - entry.rows.length * rowHeight}" x2="${oneX.toFixed(1)}" y2="${y}" stroke="#000" stroke-dasharray="3,3"/>`,
    )
  }
  y += 20
  parts.push(
    `<text x="10" y="${y}" font-size="11" fill="#555">${escapeXml(`${results.meta.machine.cpu}, ${results.meta.machine.cores} cores, Node ${results.meta.versions.node}; medians of interleaved repetitions; ${results.meta.date.slice(0, 10)}`)}</text>`,
  )
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 12}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="#fff"/>\n${parts.join('\n')}\n</svg>\n`
}

const NOTES = `Method (bench/README.md has the details):

- Every contestant is its own server process on 127.0.0.1 (\`bench/contestants/*.ts\`), the load
  generator another (\`bench/load/client.ts\`). The machine's two cores go one to each.
- The client reads raw sockets, decodes the chunked framing itself and checks every event:
  count, order and every payload byte. A run that fails the check is reported and left out.
- Server CPU is \`process.cpuUsage()\` of the server process around each run (user + system),
  divided by the events (or deliveries) the client received.
- Memory: heap used and RSS of the server after forced GC, minus its baseline before the
  connections, divided by the connections.
- Repetitions interleave the contestants (the order rotates); cells show the median and half the
  min–max range. Other work on the machine adds noise: compare ratios within one run.
- Same bytes for everyone: Oven runs with \`sep: '\\n'\` (its default is CRLF), better-sse with a
  serializer that sends text unquoted. better-sse still adds \`event:\` and a random UUID \`id:\`
  line to each event (its defaults). better-sse's \`push\` ignores backpressure, so its stream loop
  waits for \`drain\` itself; @fastify/sse sends the head with the first write, so its idle and
  broadcast routes call \`flushHeaders()\`.

Reading the results:

- Oven can go past "the limit". The limit is one \`res.write\` per event, as most hand-written
  servers and peers do; Oven's pump gathers the events a source produces in one burst into one
  write (up to 64 KiB, or at the end of the macrotask), so small events cost it far fewer writes,
  and 4 KiB events a sixteenth of them. Against frames encoded before the run
  (\`plain-frames\`), what remains is encoding the text to UTF-8, which that loop never does.
- Broadcast: Oven encodes each event to UTF-8 once per process (not once per client) and, per
  client, writes what is queued in one go.
- Idle connections: an Oven stream is its source (here a channel an app would push into), a
  small pump object parked in that channel, a slot in one keep-alive heap shared by every stream
  (one timer in all, not one per stream), shutdown registration and disconnect handling, where the
  plain loop keeps only the response in a \`Set\` (with a \`once\` listener). A waiting stream
  holds no promise, closure or suspended async frame; streams given the same options object share
  one resolved copy. @fastify/sse keeps a heartbeat timer and an SSE context per reply.
- Oven on Hono: the same app (\`bench/lib/hono-app.ts\`) twice. On its fast path \`sse(c)\` writes to
  the Node response itself, as \`sendEventStream\` does (docs/hono.md); on the web path
  (\`direct: false\`, or any route behind a middleware) @hono/node-server copies a
  \`ReadableStream\` into it, which holds about 2.3 times the heap per idle connection.`

/** Where the hand-written part of docs/benchmarks.md starts; a full run keeps what follows. */
export const HAND_WRITTEN = '<!-- Hand-written from here on: npm run bench keeps it. -->'

/** The hand-written tail of the doc at `path` (from {@link HAND_WRITTEN}), or nothing. */
function handWritten(path: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return ''
  }
  const at = text.indexOf(HAND_WRITTEN)
  return at < 0 ? '' : `\n${text.slice(at)}`
}

/** Writes the JSON (always) and docs/benchmarks.md with its chart (when asked). */
export function writeOutputs(
  results: Results,
  options: { json: string; docs: boolean },
): { markdown: string; failures: string[] } {
  const cases = aggregate(results)
  const failures = results.records
    .filter((r) => r.error)
    .map(
      (r) => `${r.scenario} ${JSON.stringify(r.params)} ${r.contestant} rep ${r.rep}: ${r.error}`,
    )
  const sections: string[] = []
  const titles: Record<string, string> = {
    stream: '### 1. One client: events/s and server CPU per event',
    idle: '### 2. Idle connections: memory per connection',
    subscribers: '### 2b. Idle broadcast subscribers: memory per connection',
    broadcast: '### 3. Broadcast: CPU per delivery and latency',
  }
  for (const scenario of ['stream', 'idle', 'subscribers', 'broadcast']) {
    const entries = cases.filter((c) => c.scenario === scenario)
    if (entries.length === 0) continue
    sections.push(titles[scenario]!, '', ...entries.map(table))
    if (scenario === 'stream') {
      // Evidence that the load generator kept up: its own CPU time over the run's wall time.
      const shares = entries.flatMap((e) =>
        e.rows.map((r) => r.metrics.clientCpuShare?.max ?? Number.NaN),
      )
      const worst = Math.max(...shares.filter(Number.isFinite))
      if (Number.isFinite(worst)) {
        sections.push(
          `The load generator used at most ${(worst * 100).toFixed(0)}% of a core in any of these ` +
            'runs (at 100% the client, not the server, would set the pace).',
          '',
        )
      }
    }
  }
  const list = checks(cases)
  const ahead = aheadTable(cases)
  const checkLines = [
    '| target | wanted | measured | |',
    '|---|---:|---:|---|',
    ...list.map(
      (c) =>
        `| ${c.what} | ${c.target} | ${c.measured} | ${c.pass === undefined ? '—' : c.pass ? 'met' : '**not met**'} |`,
    ),
  ]
  const { meta } = results
  const versions = Object.entries(meta.versions)
    .map(([name, v]) => `${name} ${v}`)
    .join(', ')
  const markdown = [
    `Command: \`${meta.command}\` (${meta.seconds} s, ${meta.date})`,
    `Machine: ${meta.machine.cpu}, ${meta.machine.cores} cores, ${meta.machine.memoryGiB} GiB, ${meta.machine.os}; load average at the end ${meta.machine.loadAverageAtEnd.join(' ')}`,
    `Versions: ${versions}`,
    '',
    ...sections,
    '### Targets (issues 2, 5 and 14)',
    '',
    ...checkLines,
    '',
    '### Oven against each peer',
    '',
    "Oven's median over the peer's in the same run: events/s above 1× is ahead, CPU, memory and",
    `time below 1× is ahead. Rows where Oven is behind are in bold (${ahead.behind} here).`,
    '',
    ...ahead.lines,
    '',
    failures.length === 0
      ? 'Every run passed the correctness check (clients received exactly what was sent).'
      : `**${failures.length} runs failed the correctness check**: see bench/results/latest.json.`,
  ].join('\n')
  writeFileSync(
    options.json,
    `${JSON.stringify({ ...results, checks: list, failures }, null, 2)}\n`,
  )
  if (options.docs) {
    const svgPath = sibling(import.meta.url, '../../docs/assets/benchmarks.svg')
    mkdirSync(dirname(svgPath), { recursive: true })
    writeFileSync(svgPath, chart(results, cases))
    const doc = [
      '# Benchmarks',
      '',
      '<!-- Generated by `npm run bench` (bench/run.ts); edit bench/lib/report.ts, not this file. -->',
      '',
      'Oven against a hand-written `node:http` loop (the limit: one `res.write` per event, honouring',
      'backpressure) and its peers, all in the same run. Ratios are to the plain loop.',
      '',
      '![Ratios to the plain res.write loop](assets/benchmarks.svg)',
      '',
      NOTES,
      '',
      '## Results',
      '',
      markdown,
      '',
      'Raw results: `bench/results/latest.json`. Reproduce with `npm run bench` (about 5 minutes;',
      '`npm run bench -- --quick` for a smoke run under a minute).',
      '',
    ].join('\n')
    const docPath = sibling(import.meta.url, '../../docs/benchmarks.md')
    writeFileSync(docPath, doc + handWritten(docPath))
  }
  return { markdown, failures }
}
