/**
 * `npm run bench`: Oven against a plain `res.write` loop and its peers, every contestant a
 * server process of its own on 127.0.0.1, the load generator another process.
 *
 * Scenarios:
 * 1. `stream` — one client reads N events of 64 B and of 4 KiB: events/s and server CPU µs/event;
 * 2. `idle` — 1 000 / 5 000 / 10 000 idle streams: server heap and RSS KiB per connection after GC;
 * 3. `broadcast` — 100 × 256 B events published back-to-back to 1 000 and 5 000 clients on one
 *    topic, and to 5 000 clients spread over 1 000 topics: server CPU µs per delivery, p50/p99
 *    latency from the publish time in each payload, time until every client has every event;
 * 4. `contracts` — what an event contract costs per event (no contract, `validate: false`, zod,
 *    valibot, arktype), in one process without sockets: `contracts.ts`, which prints its table;
 * 5. `subscribers` — 1 000 / 10 000 idle broadcast subscribers (`/sub`, a topic nobody publishes
 *    to): server heap and RSS KiB per connection after GC, as scenario 2.
 * `scale` (not in the default run): how cost grows, for the plain loop, `sendEventStream` and
 * `EventSourceResponse` — idle subscribers at 1 000 / 10 000 / 50 000, broadcast to 500 /
 * 5 000 / 20 000 subscribers, one topic against 1 000. Counts the descriptor limit cannot hold
 * are measured at the largest count it can, and the log says so.
 *
 * Every run checks that the client received exactly what was sent (count, order, each byte of
 * each payload); a run that fails the check is reported and left out of the medians.
 * Repetitions interleave the contestants (the order rotates each time) so that noise from
 * other work on the machine spreads over all of them; tables give medians and the spread.
 *
 * Flags: --quick (< 60 s smoke run), --scenario stream,idle,broadcast,contracts,subscribers,scale (or `client` or `patterns`
 * alone: bench/client.ts, the client libraries beside each other), --reps N,
 * --contestants plain,oven-node,…, --tiny (a few hundred events: the test suite's mode),
 * --docs / --no-docs (write docs/benchmarks.md and its chart; default: only on a full run),
 * --out FILE (JSON results; default bench/results/latest.json for a full run, else
 * bench/results/partial.json.tmp), --from FILE (rewrite the
 * tables, docs and chart from saved results without measuring), --profile DIR (a V8 CPU
 * profile of the server over each measured stream and broadcast run, written to DIR;
 * `bench/profile-summary.ts` reads them; the profiler's cost is then in the numbers).
 */

import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { CLIENT_FULL, CLIENT_QUICK, runClientBench } from './client.ts'
import { CONTESTANTS, type ContestantInfo } from './lib/contestants.ts'
import { Child, sibling } from './lib/ipc.ts'
import { collectMeta, type Results, type RunRecord, writeOutputs } from './lib/report.ts'

/** The descriptor limits of this process (`Infinity` for unlimited), read on Linux only. */
function fileLimits(): { soft: number; hard: number } {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'))
    const [soft, hard] = (line ?? '')
      .split(/\s+/)
      .slice(3, 5)
      .map((v) => (v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v)))
    if (soft !== undefined && hard !== undefined && soft > 0 && hard > 0) return { soft, hard }
  } catch {}
  return { soft: Number.POSITIVE_INFINITY, hard: Number.POSITIVE_INFINITY }
}

// The idle, subscribers and scale scenarios hold thousands of sockets in one server and in the
// load generator (each a process of its own, inheriting this limit): raise the soft descriptor
// limit to the hard one, by running this script again under `ulimit -n` (Node has no setrlimit).
{
  const { soft, hard } = fileLimits()
  if (soft < hard && process.env.OVEN_BENCH_ULIMIT === undefined) {
    const again = spawnSync(
      '/bin/sh',
      [
        '-c',
        'ulimit -n "$(ulimit -Hn)" && exec "$@"',
        'sh',
        process.execPath,
        ...process.execArgv,
        ...process.argv.slice(1),
      ],
      { stdio: 'inherit', env: { ...process.env, OVEN_BENCH_ULIMIT: String(hard) } },
    )
    process.exit(again.status ?? 1)
  }
}

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tiny: { type: 'boolean', default: false },
    scenario: { type: 'string' },
    reps: { type: 'string' },
    contestants: { type: 'string' },
    docs: { type: 'boolean' },
    out: { type: 'string' },
    from: { type: 'string' },
    profile: { type: 'string' },
  },
  allowNegative: true,
})

/** What one run of the benchmark does; the three presets below. */
interface Plan {
  stream: { cases: Array<{ n: number; size: number }>; reps: number }
  idle: { counts: number[]; reps: number }
  /** Idle broadcast subscribers (`/sub`, never published to). */
  subscribers: { counts: number[]; reps: number }
  /** Each case: `clients` subscribers spread over `topics` topics, every topic gets each event. */
  broadcast: {
    cases: Array<{ clients: number; topics: number }>
    events: number
    size: number
    reps: number
  }
}

const FULL: Plan = {
  stream: {
    cases: [
      { n: 200_000, size: 64 },
      { n: 20_000, size: 4096 },
    ],
    reps: 5,
  },
  // Heap after GC varies by about 1% between repetitions, RSS by 2 to 3%: with Oven and
  // @fastify/sse a few percent apart, two repetitions could rank them by chance (seen: a
  // median RSS 0.4% apart at 5 000 in a 2-repetition run, 5% apart over five). Five cost
  // about a minute more.
  idle: { counts: [1000, 5000, 10_000], reps: 5 },
  subscribers: { counts: [1000, 10_000], reps: 3 },
  broadcast: {
    cases: [
      { clients: 1000, topics: 1 },
      { clients: 5000, topics: 1 },
      { clients: 5000, topics: 1000 },
    ],
    events: 100,
    size: 256,
    reps: 3,
  },
}
const QUICK: Plan = {
  stream: {
    cases: [
      { n: 50_000, size: 64 },
      { n: 5_000, size: 4096 },
    ],
    reps: 2,
  },
  idle: { counts: [1000], reps: 1 },
  subscribers: { counts: [1000], reps: 1 },
  broadcast: { cases: [{ clients: 500, topics: 1 }], events: 100, size: 256, reps: 1 },
}
const TINY: Plan = {
  stream: {
    cases: [
      { n: 2_000, size: 64 },
      { n: 200, size: 4096 },
    ],
    reps: 1,
  },
  idle: { counts: [50], reps: 1 },
  subscribers: { counts: [50], reps: 1 },
  broadcast: {
    cases: [
      { clients: 20, topics: 1 },
      { clients: 20, topics: 4 },
    ],
    events: 10,
    size: 256,
    reps: 1,
  },
}
/** `--scenario scale`: the growth curves of issue #14 (subscribers and broadcast only). */
const SCALE: Pick<Plan, 'subscribers' | 'broadcast'> = {
  subscribers: { counts: [1000, 10_000, 50_000], reps: 2 },
  broadcast: {
    cases: [
      { clients: 500, topics: 1 },
      { clients: 5000, topics: 1 },
      { clients: 20_000, topics: 1 },
      { clients: 5000, topics: 1000 },
    ],
    events: 100,
    size: 256,
    reps: 2,
  },
}
/** The contestants of `--scenario scale` unless `--contestants` names others. */
const SCALE_CONTESTANTS = ['plain', 'oven-node', 'oven-web']

const DEFAULT_SCENARIOS = ['stream', 'idle', 'broadcast', 'contracts', 'subscribers']
const scenarios = new Set(
  (flags.scenario ?? DEFAULT_SCENARIOS.join(',')).split(',').map(
    (s) =>
      (
        ({
          '1': 'stream',
          '2': 'idle',
          '3': 'broadcast',
          '4': 'contracts',
          '5': 'subscribers',
        }) as Record<string, string>
      )[s.trim()] ?? s.trim(),
  ),
)
for (const s of scenarios) {
  if (![...DEFAULT_SCENARIOS, 'scale', 'client', 'patterns'].includes(s)) {
    throw new Error(`--scenario: unknown "${s}"`)
  }
}
const plan: Plan = structuredClone(flags.tiny ? TINY : flags.quick ? QUICK : FULL)
// `scale` measures the subscribers and broadcast curves instead of their default cases
// (--tiny and --quick keep their small cases, to check the harness).
if (scenarios.has('scale')) {
  if (!flags.tiny && !flags.quick) Object.assign(plan, structuredClone(SCALE))
  scenarios.delete('scale')
  scenarios.add('subscribers').add('broadcast')
}
if (flags.reps !== undefined) {
  const reps = Number(flags.reps)
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps: expected a positive integer`)
  plan.stream.reps = plan.idle.reps = plan.subscribers.reps = plan.broadcast.reps = reps
}
// `--scenario patterns` (bench/patterns.ts): topic-pattern matching, in one process, on its own.
if (scenarios.has('patterns')) {
  if (scenarios.size > 1) throw new Error('--scenario: run "patterns" on its own')
  const args = [sibling(import.meta.url, './patterns.ts'), ...(flags.quick ? ['--quick'] : [])]
  const result = spawnSync(
    process.execPath,
    ['--import', sibling(import.meta.url, './lib/ts-register.mjs'), ...args],
    { stdio: 'inherit' },
  )
  process.exit(result.status ?? 1)
}
// `--scenario client` (bench/client.ts) measures clients, not servers: it runs on its own,
// prints its table and stops, outside the server scenarios' results and docs.
if (scenarios.has('client')) {
  if (scenarios.size > 1) throw new Error('--scenario: run "client" on its own')
  const clientPlan = structuredClone(flags.quick || flags.tiny ? CLIENT_QUICK : CLIENT_FULL)
  if (flags.reps !== undefined) clientPlan.parse.reps = clientPlan.memory.reps = Number(flags.reps)
  const { markdown, failures } = await runClientBench(clientPlan)
  process.stdout.write(`${markdown}\n`)
  if (failures.length > 0) {
    process.stderr.write(`\nCorrectness failures:\n${failures.map((f) => `- ${f}`).join('\n')}\n`)
  }
  process.exit(failures.length > 0 ? 1 : 0)
}
const scaleRun = flags.scenario?.split(',').some((s) => s.trim() === 'scale') ?? false
const chosen =
  flags.contestants?.split(',').map((s) => s.trim()) ?? (scaleRun ? SCALE_CONTESTANTS : undefined)
const contestants = chosen
  ? chosen.map((id) => {
      const info = CONTESTANTS.find((c) => c.id === id)
      if (!info)
        throw new Error(`--contestants: unknown "${id}"; known: ${CONTESTANTS.map((c) => c.id)}`)
      return info
    })
  : [...CONTESTANTS]
const fullRun =
  !flags.quick &&
  !flags.tiny &&
  !chosen &&
  !scaleRun &&
  scenarios.size === DEFAULT_SCENARIOS.length &&
  !flags.reps
const writeDocs = flags.docs ?? fullRun
// Only a full run replaces the committed results; partial runs go to an ignored file.
const out =
  flags.out ??
  sibling(import.meta.url, fullRun ? './results/latest.json' : './results/partial.json.tmp')

const CALL_TIMEOUT = 120_000

/**
 * Runs `measure`; with `--profile DIR` and a `name`, under the server's CPU profiler, the
 * profile written to `DIR/name.cpuprofile`.
 */
async function profiled<T>(
  server: Child,
  name: string | undefined,
  measure: () => Promise<T>,
): Promise<T> {
  if (flags.profile === undefined || name === undefined) return measure()
  mkdirSync(flags.profile, { recursive: true })
  await server.call('profile-start', undefined, CALL_TIMEOUT)
  try {
    return await measure()
  } finally {
    await server.call(
      'profile-stop',
      { file: join(flags.profile, `${name}.cpuprofile`) },
      CALL_TIMEOUT,
    )
  }
}

/** The contestants that take part in `scenario`. */
function contestantsOf(scenario: string): ContestantInfo[] {
  return contestants.filter((c) => !c.scenarios || c.scenarios.includes(scenario))
}

/**
 * Connections one server (and the load generator) can hold: the descriptor limit less a margin
 * for the listening socket, IPC, standard streams and Node's own descriptors.
 */
const CONNECTION_CAPACITY = fileLimits().soft - 200

/**
 * `count`, or when it is above {@link CONNECTION_CAPACITY} the largest round count (thousands, or hundreds) that fits,
 * said in the log: the run measures what this machine allows and says why.
 */
function fitting(what: string, count: number): number {
  if (count <= CONNECTION_CAPACITY) return count
  const step = CONNECTION_CAPACITY >= 1000 ? 1000 : 100
  const fits = Math.floor(CONNECTION_CAPACITY / step) * step
  const { soft, hard } = fileLimits()
  log(
    `${what}: ${count.toLocaleString('en')} connections need about ${(count + 200).toLocaleString('en')} ` +
      `descriptors in the server and in the load generator; the limit is ${soft} (hard ${hard}, ` +
      `raise it with \`ulimit -n\` as root with CAP_SYS_RESOURCE): measuring ${fits.toLocaleString('en')} instead`,
  )
  return fits
}

function serverProcess(info: ContestantInfo): Child {
  return new Child(sibling(import.meta.url, `./contestants/${info.id}.ts`), [], ['--expose-gc'])
}

/** The contestants in the order of repetition `rep`: rotated, so none always goes first. */
function rotated<T>(items: readonly T[], rep: number): T[] {
  const k = rep % items.length
  return [...items.slice(k), ...items.slice(0, k)]
}

const cpuMicros = (a: { user: number; system: number }, b: { user: number; system: number }) =>
  b.user - a.user + (b.system - a.system)

async function waitForSubscribers(server: Child, count: number, timeout = 30_000) {
  const started = Date.now()
  for (;;) {
    const n = await server.call<number>('subscribers')
    if (n === count) return
    if (Date.now() - started > timeout) {
      throw new Error(`bench: server has ${n} subscribers, expected ${count}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const startedAt = Date.now()
function log(line: string): void {
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(0).padStart(4)
  process.stderr.write(`${seconds}s ${line}\n`)
}

async function runStream(client: Child, records: RunRecord[]): Promise<void> {
  const servers = new Map<string, { child: Child; port: number }>()
  const contestants = contestantsOf('stream')
  try {
    for (const info of contestants) {
      const child = serverProcess(info)
      servers.set(info.id, { child, port: await child.call<number>('start') })
    }
    const once = async (info: ContestantInfo, n: number, size: number, profile?: string) => {
      const { child, port } = servers.get(info.id)!
      return profiled(child, profile, async () => {
        const before = await child.call<{ user: number; system: number }>('cpu')
        const r = await client.call<{
          events: number
          ms: number
          clientCpuMs: number
          error: string | undefined
        }>('stream', { port, n, size, timeout: CALL_TIMEOUT - 5000 }, CALL_TIMEOUT)
        const after = await child.call<{ user: number; system: number }>('cpu')
        return { ...r, cpu: cpuMicros(before, after) }
      })
    }
    // Warm-up: let every server's JIT settle before anything is recorded.
    for (const info of contestants) {
      for (const { n, size } of plan.stream.cases) await once(info, Math.ceil(n / 4), size)
    }
    for (let rep = 0; rep < plan.stream.reps; rep++) {
      for (const { n, size } of plan.stream.cases) {
        for (const info of rotated(contestants, rep)) {
          const r = await once(info, n, size, `stream-${size}-${info.id}-${rep}`)
          records.push({
            scenario: 'stream',
            contestant: info.id,
            rep,
            params: { n, size },
            metrics: {
              eventsPerSec: (n / r.ms) * 1000,
              cpuPerEvent: r.cpu / n,
              clientCpuShare: r.clientCpuMs / r.ms,
            },
            error: r.error,
          })
          log(
            `stream ${size} B  ${info.id.padEnd(13)} ${Math.round((n / r.ms) * 1000)
              .toLocaleString('en')
              .padStart(
                10,
              )} ev/s ${(r.cpu / n).toFixed(3)} µs/ev${r.error ? `  ERROR ${r.error}` : ''}`,
          )
        }
      }
    }
  } finally {
    await Promise.all([...servers.values()].map((s) => s.child.stop()))
  }
}

async function runBroadcast(client: Child, records: RunRecord[]): Promise<void> {
  const { events, size } = plan.broadcast
  const contestants = contestantsOf('broadcast')
  const cases = plan.broadcast.cases
    .map((c) => ({ ...c, clients: fitting('broadcast', c.clients) }))
    .filter(
      (c, i, all) => all.findIndex((d) => d.clients === c.clients && d.topics === c.topics) === i,
    )
  const servers = new Map<string, { child: Child; port: number }>()
  const round = async (info: ContestantInfo, clients: number, topics: number, profile?: string) => {
    const { child, port } = servers.get(info.id)!
    await client.call(
      'subscribe',
      { port, count: clients, events, size, topics, timeout: 60_000 },
      70_000,
    )
    await waitForSubscribers(child, clients)
    const { before, r, after } = await profiled(child, profile, async () => {
      const before = await child.call<{ user: number; system: number }>('cpu')
      await child.call('broadcast', { count: events, size, topics }, CALL_TIMEOUT)
      const r = await client.call<{
        p50: number
        p99: number
        allDeliveredMs: number
        error: string | undefined
      }>('awaitRound', { timeout: 60_000 }, 70_000)
      const after = await child.call<{ user: number; system: number }>('cpu')
      return { before, r, after }
    })
    await client.call('closeAll')
    await waitForSubscribers(child, 0)
    return { ...r, cpu: cpuMicros(before, after) }
  }
  try {
    for (const info of contestants) {
      const child = serverProcess(info)
      servers.set(info.id, { child, port: await child.call<number>('start') })
      await round(info, Math.min(100, cases[0]!.clients), 1)
    }
    for (let rep = 0; rep < plan.broadcast.reps; rep++) {
      for (const { clients, topics } of cases) {
        for (const info of rotated(contestants, rep)) {
          const r = await round(
            info,
            clients,
            topics,
            `broadcast-${clients}x${topics}-${info.id}-${rep}`,
          )
          const deliveries = clients * events
          records.push({
            scenario: 'broadcast',
            contestant: info.id,
            rep,
            // `topics` only when above 1: one-topic records read as before.
            params: { clients, events, size, ...(topics > 1 ? { topics } : {}) },
            metrics: {
              cpuPerDelivery: r.cpu / deliveries,
              p50Ms: r.p50 / 1000,
              p99Ms: r.p99 / 1000,
              allDeliveredMs: r.allDeliveredMs,
            },
            error: r.error,
          })
          log(
            `broadcast ${clients}${topics > 1 ? ` on ${topics} topics` : ''} ${info.id.padEnd(13)} ${(r.cpu / deliveries).toFixed(3)} µs/delivery ` +
              `p50 ${(r.p50 / 1000).toFixed(1)} ms p99 ${(r.p99 / 1000).toFixed(1)} ms all ${r.allDeliveredMs.toFixed(0)} ms` +
              (r.error ? `  ERROR ${r.error}` : ''),
          )
        }
      }
    }
  } finally {
    await Promise.all([...servers.values()].map((s) => s.child.stop()))
  }
}

/**
 * Scenario 2 (`idle`: `/idle`, a stream with nothing to send) and 5 (`subscribers`: `/sub`, a
 * broadcast subscriber of a topic nobody publishes to): memory per connection after GC.
 */
async function runIdle(
  client: Child,
  records: RunRecord[],
  scenario: 'idle' | 'subscribers',
): Promise<void> {
  const { reps } = plan[scenario]
  const counts = [...new Set(plan[scenario].counts.map((n) => fitting(scenario, n)))]
  const path = scenario === 'idle' ? '/idle' : '/sub'
  for (let rep = 0; rep < reps; rep++) {
    for (const info of rotated(contestantsOf(scenario), rep)) {
      // A fresh server each time: memory is measured against its own baseline.
      const child = serverProcess(info)
      try {
        const port = await child.call<number>('start')
        const base = await child.call<{ heapUsed: number; rss: number }>('memory')
        for (const total of counts) {
          let error: string | undefined
          try {
            await client.call('idle', { port, total, path, timeout: 120_000 }, 130_000)
            if (scenario === 'subscribers') await waitForSubscribers(child, total)
          } catch (e) {
            error = String((e as Error).message)
          }
          const m = await child.call<{ heapUsed: number; rss: number }>('memory')
          const heapKiB = (m.heapUsed - base.heapUsed) / total / 1024
          const rssKiB = (m.rss - base.rss) / total / 1024
          records.push({
            scenario,
            contestant: info.id,
            rep,
            params: { connections: total },
            metrics: { heapKiB, rssKiB },
            error,
          })
          log(
            `${scenario} ${String(total).padStart(5)} ${info.id.padEnd(13)} heap ${heapKiB.toFixed(2)} KiB/conn rss ${rssKiB.toFixed(2)} KiB/conn${error ? `  ERROR ${error}` : ''}`,
          )
          if (error) break
        }
      } finally {
        await client.call('closeAll')
        await child.stop()
      }
    }
  }
}

/**
 * Scenario 4, in a process of its own (`contracts.ts`, with a forced GC between measures): it
 * measures Oven alone, so `--contestants` does not apply; it prints its own table.
 */
function runContracts(): void {
  const args = [
    '--expose-gc',
    '--import',
    sibling(import.meta.url, './lib/ts-register.mjs'),
    sibling(import.meta.url, './contracts.ts'),
    ...(flags.tiny ? ['--tiny'] : flags.quick ? ['--quick'] : []),
    ...(flags.reps === undefined ? [] : ['--reps', flags.reps]),
  ]
  log('contracts: validation cost per event')
  const result = spawnSync(process.execPath, args, { stdio: 'inherit', timeout: 600_000 })
  if (result.status !== 0) {
    process.stderr.write(
      `contracts: the benchmark failed (${result.error ?? `status ${result.status}`})\n`,
    )
    process.exitCode = 1
  }
}

/** `--from FILE`: rewrites the tables, docs and chart from saved results, measuring nothing. */
function rewrite(file: string): void {
  const saved = JSON.parse(readFileSync(file, 'utf8')) as Results
  const results: Results = {
    meta: saved.meta,
    contestants: saved.contestants,
    records: saved.records,
  }
  const { markdown } = writeOutputs(results, { json: out, docs: flags.docs ?? true })
  process.stdout.write(`${markdown}\n`)
}

async function main(): Promise<void> {
  if (flags.from !== undefined) return rewrite(flags.from)
  if (scenarios.has('contracts')) {
    runContracts()
    if (scenarios.size === 1) return
  }
  const started = Date.now()
  const records: RunRecord[] = []
  if (scenarios.has('idle') || scenarios.has('subscribers')) {
    log(`descriptor limit ${fileLimits().soft}: up to ${CONNECTION_CAPACITY} connections`)
  }
  const client = new Child(sibling(import.meta.url, './load/client.ts'))
  try {
    if (scenarios.has('stream')) await runStream(client, records)
    if (scenarios.has('idle')) await runIdle(client, records, 'idle')
    if (scenarios.has('subscribers')) await runIdle(client, records, 'subscribers')
    if (scenarios.has('broadcast')) await runBroadcast(client, records)
  } finally {
    await client.stop()
  }
  const results: Results = {
    meta: collectMeta({
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      plan,
      seconds: (Date.now() - started) / 1000,
    }),
    contestants: contestants.map(({ id, label, oven }) => ({ id, label, oven })),
    records,
  }
  mkdirSync(dirname(out), { recursive: true })
  const { markdown, failures } = writeOutputs(results, { json: out, docs: writeDocs })
  process.stdout.write(`${markdown}\n`)
  if (failures.length > 0) {
    process.stderr.write(`\nCorrectness failures:\n${failures.map((f) => `- ${f}`).join('\n')}\n`)
    process.exitCode = 1
  }
}

await main()
