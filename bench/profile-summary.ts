/**
 * Where a server's time goes: reads the V8 CPU profiles `npm run bench -- --profile DIR` wrote
 * and prints the functions with the most self time (the time spent in the function itself, not
 * in what it calls), as a share of all samples, summed over every file given.
 *
 *   npx tsx bench/profile-summary.ts DIR/broadcast-5000x1-oven-node-*.cpuprofile
 *   npx tsx bench/profile-summary.ts --top 40 --by file DIR/stream-4096-oven-node-*.cpuprofile
 *
 * `--by function` (default) groups by function and source position, `--by file` by source file
 * (Node's internals by module), which shows which layer (Oven, node:http, streams, GC) costs.
 * Line numbers of Oven's functions are those of the JavaScript the bench runs (types stripped by
 * lib/ts-hooks.mjs), not of the .ts source: find a function by its name.
 */

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const { values, positionals } = parseArgs({
  options: { top: { type: 'string', default: '25' }, by: { type: 'string', default: 'function' } },
  allowPositionals: true,
})
if (positionals.length === 0) throw new Error('profile-summary: name one or more .cpuprofile files')
if (values.by !== 'function' && values.by !== 'file') {
  throw new Error(`--by: expected "function" or "file", received "${values.by}"`)
}

/** A short name for a script URL: the path from `src/` or `node_modules/`, or Node's module. */
function shortUrl(url: string): string {
  if (url === '') return ''
  const at = Math.max(url.lastIndexOf('/src/'), url.lastIndexOf('/node_modules/'))
  if (at >= 0) return url.slice(at + 1)
  if (url.startsWith('node:')) return url
  const bench = url.lastIndexOf('/bench/')
  return bench >= 0 ? url.slice(bench + 1) : url
}

function key(frame: ProfileNode['callFrame']): string {
  const file = shortUrl(frame.url)
  if (values.by === 'file') return file || `(${frame.functionName || 'native'})`
  const name = frame.functionName || '(anonymous)'
  return file ? `${name}  ${file}:${frame.lineNumber + 1}` : name
}

const self = new Map<string, number>()
let total = 0
for (const path of positionals) {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!)
    // Time of a sample: the delta to the next one (the last sample has none).
    const dt = profile.timeDeltas[i + 1] ?? 0
    if (!node || dt <= 0) continue
    const k = key(node.callFrame)
    self.set(k, (self.get(k) ?? 0) + dt)
    total += dt
  }
}
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))
process.stdout.write(`${positionals.length} profiles, ${(total / 1000).toFixed(0)} ms sampled\n`)
for (const [name, micros] of rows) {
  process.stdout.write(`${((micros / total) * 100).toFixed(1).padStart(5)}%  ${name}\n`)
}
