/**
 * What matching a published topic against pattern subscriptions costs:
 * `npm run bench -- --scenario patterns` (or `npx tsx bench/patterns.ts [--quick]`).
 *
 * One process, no sockets. For 10, 1 000 and 10 000 patterns (subscriptions such as
 * `user/<id>/*`, `orders/<id>/**`, `region/*\/store/<id>`, `*\/alerts/<id>`), each published
 * topic is matched by the segment trie the Broadcaster uses (`PatternTrie`) and by a naive scan
 * of every pattern; every topic's matches are checked equal between the two. Prints ns per
 * topic matched (median of the repetitions after a warm-up, and the best), and the trie's
 * speed-up.
 */

import { parseArgs } from 'node:util'
import { PatternTrie } from '../src/broadcast/pattern-trie.ts'
import { matches, type Pattern, parsePattern } from '../src/broadcast/topic-pattern.ts'

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tiny: { type: 'boolean', default: false },
  },
})
const reps = flags.tiny ? 1 : flags.quick ? 3 : 7
const topicsPerRep = flags.tiny ? 200 : 20_000

/** A seeded generator, so every run measures the same patterns and topics. */
function random(seed: number): () => number {
  let state = seed
  return () => {
    state = (state * 1_103_515_245 + 12_345) & 0x7fffffff
    return state / 0x80000000
  }
}

function patternsOf(count: number, next: () => number): Pattern[] {
  const shapes = [
    (id: number) => `user/${id}/*`,
    (id: number) => `orders/${id}/**`,
    (id: number) => `region/*/store/${id}`,
    (id: number) => `*/alerts/${id}`,
  ]
  return Array.from({ length: count }, (_, i) =>
    parsePattern(shapes[i % shapes.length]!(Math.floor(next() * count)), 'bench', false),
  )
}

function topicsOf(count: number, ids: number, next: () => number): string[][] {
  const shapes = [
    (id: number) => `user/${id}/inbox`,
    (id: number) => `orders/${id}/items/3`,
    (id: number) => `region/eu/store/${id}`,
    (id: number) => `shop/alerts/${id}`,
    (id: number) => `news/${id}`,
  ]
  return Array.from({ length: count }, (_, i) =>
    shapes[i % shapes.length]!(Math.floor(next() * ids)).split('/'),
  )
}

function time(run: () => number): { ns: number; found: number } {
  const start = process.hrtime.bigint()
  const found = run()
  return { ns: Number(process.hrtime.bigint() - start), found }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!

const rows: string[] = []
for (const count of [10, 1_000, 10_000]) {
  const next = random(count)
  const patterns = patternsOf(count, next)
  const trie = new PatternTrie<number>()
  for (const [i, pattern] of patterns.entries()) trie.add(pattern, i)
  const trieNs: number[] = []
  const scanNs: number[] = []
  let matched = 0
  // Rep 0 warms up (JIT, caches) and is not counted.
  for (let rep = -1; rep < reps; rep++) {
    const topics = topicsOf(topicsPerRep, count, next)
    const byTrie = time(() => {
      let found = 0
      for (const topic of topics) trie.match(topic, () => found++)
      return found
    })
    // The naive scan is slow at 10 000 patterns: a tenth of the topics, scaled.
    const scanned = topics.slice(0, Math.max(1, Math.floor(topics.length / 10)))
    const byScan = time(() => {
      let found = 0
      for (const topic of scanned)
        for (const pattern of patterns) if (matches(pattern, topic)) found++
      return found
    })
    // Correctness: the same matches, topic by topic, for the scanned ones.
    for (const topic of scanned) {
      let a = 0
      trie.match(topic, () => a++)
      const b = patterns.filter((pattern) => matches(pattern, topic)).length
      if (a !== b) throw new Error(`patterns: trie found ${a}, scan ${b} for ${topic.join('/')}`)
    }
    if (rep < 0) continue
    matched += byTrie.found
    trieNs.push(byTrie.ns / topics.length)
    scanNs.push(byScan.ns / scanned.length)
  }
  const trieMedian = median(trieNs)
  const scanMedian = median(scanNs)
  rows.push(
    `| ${count.toLocaleString('en')} | ${trieMedian.toFixed(0)} (best ${Math.min(...trieNs).toFixed(0)}) ` +
      `| ${scanMedian.toFixed(0)} (best ${Math.min(...scanNs).toFixed(0)}) ` +
      `| ${(scanMedian / trieMedian).toFixed(0)}× | ${(matched / (reps * topicsPerRep)).toFixed(2)} |`,
  )
}

process.stdout.write(
  `Pattern matching, ns per published topic (median of ${reps}, ${topicsPerRep} topics each), Node ${process.version}\n\n` +
    '| patterns | segment trie | naive scan | speed-up | matches per topic |\n' +
    '| ---: | ---: | ---: | ---: | ---: |\n' +
    `${rows.join('\n')}\n`,
)
