/**
 * The layers of `src/` import downwards only, in the order DESIGN.md draws them: helpers and
 * errors, the encoder, the registry and limits, the stream core, then what sits on it
 * (transports, channels, broadcasting), runs (on broadcasting), the adapters and test helpers, and the entry points.
 * A folder may import from its own folder and from lower ranks, never from a higher one.
 */

import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, test } from 'vitest'

const SRC = fileURLToPath(new URL('../../src/', import.meta.url))

/** Rank of each folder of `src/` (files directly in `src/` are the entry points, 6). */
const RANK: Record<string, number> = {
  util: 0,
  'errors.ts': 0,
  diagnostics: 0,
  encoder: 1,
  shutdown: 2,
  limits: 2,
  http: 2,
  stream: 3,
  // Above the stream core (a typed source wraps a source), below what binds a contract.
  contracts: 3.5,
  transports: 4,
  channels: 4,
  broadcast: 4,
  runs: 5,
  // Presence: announces through a Broadcaster, shares the Redis client's shape with the broker.
  cluster: 5,
  adapters: 5,
  testing: 5,
  metrics: 5,
  // The browser-side client: web APIs only, on top of the encoder's errors and the contracts.
  client: 5,
}

function layerOf(file: string): string {
  const path = relative(SRC, file)
  const [first, second] = path.split('/')
  return second === undefined ? (first === 'errors.ts' ? 'errors.ts' : 'entry') : first!
}

function rankOf(layer: string): number {
  if (layer === 'entry') return 6
  const rank = RANK[layer]
  if (rank === undefined) throw new Error(`src/${layer} has no rank: add it to RANK`)
  return rank
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

/** Every upward import, as `from -> to`; a folder is ranked by RANK. */
function upwardImports(): string[] {
  const out: string[] = []
  for (const file of sourceFiles(SRC)) {
    const from = layerOf(file)
    for (const match of readFileSync(file, 'utf8').matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
      const target = resolve(dirname(file), match[1]!)
      const to = layerOf(target)
      if (to !== from && rankOf(to) > rankOf(from)) {
        out.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`)
      }
    }
  }
  return out
}

test('no module of src/ imports from a layer above its own', () => {
  expect(sourceFiles(SRC).length).toBeGreaterThan(40)
  expect(upwardImports()).toEqual([])
})

test('layers are ranked in the order DESIGN.md draws them; a folder without a rank is an error', () => {
  // The stream core ranks above the encoder: the encoder importing it would be upward.
  expect(rankOf(layerOf(join(SRC, 'stream/pump.ts')))).toBeGreaterThan(
    rankOf(layerOf(join(SRC, 'encoder/encode.ts'))),
  )
  expect(layerOf(join(SRC, 'index.ts'))).toBe('entry')
  expect(() => rankOf('nowhere')).toThrow(/has no rank/)
})
