/**
 * What a contract costs per event: `npm run bench -- --scenario contracts` (or
 * `node --expose-gc --import ./bench/lib/ts-register.mjs bench/contracts.ts [--quick | --tiny]
 * [--reps N]`).
 *
 * One process, no sockets: the cost is CPU in the server and nothing else. Two measures, each
 * for no contract, a contract with `validate: false`, and a zod 4, a valibot and an arktype
 * contract of the same schema:
 *
 * 1. `check` — the contract's own work per event (`validateEvent` of the event, and the
 *    JSON text of its data), beside the plain encoder's `JSON.stringify` of the same data,
 *    the least any stream does with an object;
 * 2. `stream` — a whole stream: a generator of N events through `EventSourceResponse` and the
 *    pump, the body read to the end in this process, ns per event; the difference with "no
 *    contract" is what binding the source with `typedSource` costs.
 *
 * The event is typical of an LLM or job stream: `{ seq, text (48 chars), tags: [2], done }`.
 * Time is this process's CPU time (user + system), not the wall clock: other work on the
 * machine does not count. Every run checks that the body holds exactly the N events it should (count and last seq).
 * Repetitions interleave the variants (the order rotates every repetition) after a warm-up;
 * the table gives the best run (the least disturbed by other work on the machine) and the
 * median ± half the min–max range. Compare within one run.
 */

import { parseArgs } from 'node:util'
import { type } from 'arktype'
import * as v from 'valibot'
import { z } from 'zod'
import {
  type AnyContract,
  type Content,
  defineContract,
  EventSourceResponse,
  typedSource,
  validateEvent,
} from '../src/index.ts'

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tiny: { type: 'boolean', default: false },
    reps: { type: 'string' },
  },
})

const plan = flags.tiny
  ? { check: 2_000, stream: 500, reps: 1 }
  : flags.quick
    ? { check: 100_000, stream: 20_000, reps: 3 }
    : { check: 500_000, stream: 100_000, reps: 7 }
if (flags.reps !== undefined) plan.reps = Number(flags.reps)

interface Token {
  seq: number
  text: string
  tags: string[]
  done: boolean
}

const zodToken = z.object({
  seq: z.number().int().min(0),
  text: z.string(),
  tags: z.array(z.string()),
  done: z.boolean(),
})
const valibotToken = v.object({
  seq: v.pipe(v.number(), v.integer(), v.minValue(0)),
  text: v.string(),
  tags: v.array(v.string()),
  done: v.boolean(),
})
const arktypeToken = type({
  seq: 'number.integer >= 0',
  text: 'string',
  tags: 'string[]',
  done: 'boolean',
})

interface Variant {
  name: string
  contract: AnyContract | undefined
}

const VARIANTS: Variant[] = [
  { name: 'no contract', contract: undefined },
  { name: 'validate: false', contract: defineContract({ token: zodToken }, { validate: false }) },
  { name: 'zod 4', contract: defineContract({ token: zodToken }) },
  { name: 'valibot', contract: defineContract({ token: valibotToken }) },
  { name: 'arktype', contract: defineContract({ token: arktypeToken }) },
]

const TEXT = 'The quick brown fox jumps over the lazy dog. 0123'
const token = (seq: number): Token => ({ seq, text: TEXT, tags: ['a', 'b'], done: false })

/** CPU time (user + system) of this process since `start`, in ns: what another busy process on
 * the machine does not add to, unlike the wall clock. */
function cpuNanos(start: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(start)
  return (user + system) * 1000
}

/** Measure 1: the contract's work per event, or the plain encoder's JSON.stringify. */
function check(variant: Variant, n: number): number {
  const { contract } = variant
  let length = 0
  const started = process.cpuUsage()
  for (let i = 0; i < n; i++) {
    const event = { event: 'token', data: token(i) }
    if (contract === undefined) {
      length += JSON.stringify(event.data).length
    } else {
      const checked = validateEvent(contract, event) as { data: unknown }
      length += JSON.stringify(checked.data).length
    }
  }
  const ns = cpuNanos(started) / n
  if (length < n * 50) throw new Error(`check ${variant.name}: serialized ${length} chars`)
  return ns
}

/** Measure 2: a whole stream of `n` events through the pump, read to the end here. */
async function stream(variant: Variant, n: number): Promise<number> {
  function* tokens() {
    for (let i = 0; i < n; i++) yield { event: 'token' as const, data: token(i) }
  }
  const content: Content =
    variant.contract === undefined ? tokens() : typedSource(variant.contract, tokens())
  const started = process.cpuUsage()
  const response = new EventSourceResponse(content, { sep: '\n', ping: false })
  const text = await response.text()
  const ns = cpuNanos(started) / n
  const count = text.split('event: token\n').length - 1
  const last = `"seq":${n - 1},`
  if (count !== n || !text.includes(last)) {
    throw new Error(
      `stream ${variant.name}: ${count} events of ${n}, last seen: ${text.includes(last)}`,
    )
  }
  return ns
}

/** A full GC when node runs with `--expose-gc` (as `npm run bench` starts this script). */
const collect: () => void = (globalThis as { gc?: () => void }).gc ?? (() => {})

function rotated<T>(items: readonly T[], rep: number): T[] {
  const k = rep % items.length
  return [...items.slice(k), ...items.slice(0, k)]
}

function summary(values: number[]): { median: number; spread: number } {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median, spread: (sorted.at(-1)! - sorted[0]!) / 2 }
}

async function main(): Promise<void> {
  const results = new Map<string, { check: number[]; stream: number[] }>(
    VARIANTS.map((variant) => [variant.name, { check: [], stream: [] }]),
  )
  // Warm-up: every variant's code is compiled before anything is recorded.
  for (const variant of VARIANTS) {
    check(variant, Math.ceil(plan.check / 5))
    await stream(variant, Math.ceil(plan.stream / 5))
  }
  for (let rep = 0; rep < plan.reps; rep++) {
    for (const variant of rotated(VARIANTS, rep)) {
      const entry = results.get(variant.name)!
      // Each measure starts with an empty young generation: the garbage of the one before is
      // not collected on this one's time.
      collect()
      entry.check.push(check(variant, plan.check))
      collect()
      entry.stream.push(await stream(variant, plan.stream))
    }
  }
  const best = (values: number[]) => Math.round(Math.min(...values))
  const base = best(results.get('no contract')!.stream)
  const lines = [
    `Contract cost per event (Node ${process.versions.node}, ${plan.reps} repetitions of ` +
      `${plan.check.toLocaleString('en')} checks and of a ${plan.stream.toLocaleString('en')}-event ` +
      'stream; CPU ns per event, best and median ± half the range)',
    '',
    '| variant | check: best | check: median | stream: best | stream: median | stream over no contract (best) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const variant of VARIANTS) {
    const entry = results.get(variant.name)!
    const c = summary(entry.check)
    const s = summary(entry.stream)
    const extra = variant.contract === undefined ? '—' : `${best(entry.stream) - base}`
    lines.push(
      `| ${variant.name} | ${best(entry.check)} | ${Math.round(c.median)} ± ${Math.round(c.spread)} | ` +
        `${best(entry.stream)} | ${Math.round(s.median)} ± ${Math.round(s.spread)} | ${extra} |`,
    )
  }
  process.stdout.write(`${lines.join('\n')}\n`)
}

await main()
