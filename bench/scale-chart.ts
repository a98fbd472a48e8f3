/**
 * The growth curves of `npm run bench -- --scenario scale` (issue #14) as a chart and tables:
 *
 *   npx tsx bench/scale-chart.ts bench/results/scale.json
 *
 * writes docs/assets/scale.svg (idle memory per subscriber against subscribers; broadcast CPU
 * per delivery against subscribers) and prints the Markdown tables that docs/benchmarks.md
 * shows beside it. Each point is the median of the run's repetitions; tables add ± half the
 * min–max range.
 */

import { readFileSync, writeFileSync } from 'node:fs'
import type { Results } from './lib/report.ts'
import { summarize } from './lib/stats.ts'

const file = process.argv[2]
if (!file) throw new Error('usage: npx tsx bench/scale-chart.ts RESULTS.json')
const results = JSON.parse(readFileSync(file, 'utf8')) as Results

/** One curve: a contestant's medians of `metric` over the cases that `pick` keeps, by count. */
interface Curve {
  label: string
  points: Array<{ x: number; y: number; spreadPct: number }>
}

function curves(
  scenario: string,
  countKey: string,
  metric: string,
  pick: (params: Record<string, number>) => boolean,
): Curve[] {
  return results.contestants.map((info) => {
    const byCount = new Map<number, number[]>()
    for (const record of results.records) {
      if (record.contestant !== info.id || record.scenario !== scenario || record.error) continue
      if (!pick(record.params)) continue
      const value = record.metrics[metric]
      if (value === undefined) continue
      const count = record.params[countKey]!
      byCount.set(count, [...(byCount.get(count) ?? []), value])
    }
    const points = [...byCount]
      .sort(([a], [b]) => a - b)
      .map(([x, values]) => {
        const s = summarize.summary(values)
        return { x, y: s.median, spreadPct: s.spreadPct }
      })
    return { label: info.label, points }
  })
}

const oneTopic = (p: Record<string, number>) => p.topics === undefined
const memory = curves('subscribers', 'connections', 'heapKiB', () => true)
const rss = curves('subscribers', 'connections', 'rssKiB', () => true)
const cpu = curves('broadcast', 'clients', 'cpuPerDelivery', oneTopic)
const p50 = curves('broadcast', 'clients', 'p50Ms', oneTopic)
const manyTopics = (metric: string) =>
  curves('broadcast', 'clients', metric, (p) => p.topics === 1000)

const COLORS = ['#555', '#d9480f', '#1971c2', '#2f9e44', '#9c36b5']

/** One panel: lines over a log-scaled x axis, y from 0. */
function panel(title: string, unit: string, data: Curve[], left: number): string {
  const width = 380
  const height = 220
  const top = 40
  const xs = data.flatMap((c) => c.points.map((p) => p.x))
  const ys = data.flatMap((c) => c.points.map((p) => p.y))
  if (xs.length === 0) return ''
  const [x0, x1] = [Math.log10(Math.min(...xs)), Math.log10(Math.max(...xs))]
  const yMax = Math.max(...ys) * 1.1
  const px = (x: number) => left + 50 + ((Math.log10(x) - x0) / (x1 - x0 || 1)) * (width - 70)
  const py = (y: number) => top + height - (y / yMax) * height
  const parts = [
    `<text x="${left + 50}" y="${top - 18}" font-size="14" font-weight="bold">${title}</text>`,
    `<line x1="${left + 50}" y1="${top + height}" x2="${left + width - 20}" y2="${top + height}" stroke="#999"/>`,
    `<line x1="${left + 50}" y1="${top}" x2="${left + 50}" y2="${top + height}" stroke="#999"/>`,
    `<text x="${left + 4}" y="${top + 4}" font-size="11">${yMax.toFixed(1)}</text>`,
    `<text x="${left + 4}" y="${top + height}" font-size="11">0</text>`,
    `<text x="${left + 8}" y="${top + height / 2}" font-size="11">${unit}</text>`,
  ]
  for (const x of [...new Set(xs)].sort((a, b) => a - b)) {
    parts.push(
      `<text x="${px(x) - 14}" y="${top + height + 16}" font-size="11">${x.toLocaleString('en')}</text>`,
    )
  }
  data.forEach((curve, i) => {
    const color = COLORS[i % COLORS.length]
    const path = curve.points.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ')
    parts.push(`<polyline points="${path}" fill="none" stroke="${color}" stroke-width="2"/>`)
    for (const p of curve.points) {
      parts.push(
        `<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3" fill="${color}"/>`,
      )
    }
  })
  return parts.join('\n')
}

const legend = results.contestants
  .map(
    (info, i) =>
      `<rect x="${60 + (i % 2) * 390}" y="${306 + Math.floor(i / 2) * 18}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>` +
      `<text x="${78 + (i % 2) * 390}" y="${316 + Math.floor(i / 2) * 18}" font-size="11">${info.label.replace(/&/g, '&amp;')}</text>`,
  )
  .join('\n')
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="800" height="${316 + Math.ceil(results.contestants.length / 2) * 18}" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
${panel('Idle subscribers: heap per connection', 'KiB', memory, 0)}
${panel('Burst fan-out, one topic: CPU per delivery', 'µs', cpu, 400)}
<text x="50" y="294" font-size="11">x: subscribers (log scale). Medians of the run's repetitions; ${results.meta.date.slice(0, 10)}, ${results.meta.machine.cpu}</text>
${legend}
</svg>
`
writeFileSync(new URL('../docs/assets/scale.svg', import.meta.url), svg)

/** A Markdown table: one row per contestant, one column per count. */
function table(title: string, data: Curve[], digits: number): string {
  const counts = [...new Set(data.flatMap((c) => c.points.map((p) => p.x)))].sort((a, b) => a - b)
  const lines = [
    `| ${title} | ${counts.map((n) => n.toLocaleString('en')).join(' | ')} |`,
    `| --- | ${counts.map(() => '--:').join(' | ')} |`,
  ]
  for (const curve of data) {
    const cells = counts.map((n) => {
      const point = curve.points.find((p) => p.x === n)
      return point ? `${point.y.toFixed(digits)} ±${point.spreadPct.toFixed(0)}%` : '—'
    })
    lines.push(`| ${curve.label} | ${cells.join(' | ')} |`)
  }
  return lines.join('\n')
}

console.log(table('idle subscribers: heap KiB/conn', memory, 2))
console.log()
console.log(table('idle subscribers: RSS KiB/conn', rss, 1))
console.log()
console.log(table('fan-out, 1 topic: CPU µs/delivery', cpu, 2))
console.log()
console.log(table('fan-out, 1 topic: p50 ms', p50, 0))
console.log()
console.log(table('fan-out over 1 000 topics: CPU µs/delivery', manyTopics('cpuPerDelivery'), 2))
console.log()
console.log(table('fan-out over 1 000 topics: p50 ms', manyTopics('p50Ms'), 0))
