/**
 * The web entry points must load on any runtime that speaks fetch (Cloudflare Workers, Deno,
 * Bun, browsers' service workers): no `node:` import and no package import anywhere in their
 * module graph. Type-only imports are erased from the JavaScript and so are allowed.
 */

import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, test } from 'vitest'

const src = resolve(dirname(fileURLToPath(import.meta.url)), '../../src')

/** Every runtime (non type-only) import specifier of `file`. */
function runtimeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const out: string[] = []
  const pattern = /^\s*(import|export)\s+(type\s+)?[^'";]*?from\s+['"]([^'"]+)['"]/gm
  for (const match of text.matchAll(pattern)) {
    if (match[2]) continue
    out.push(match[3]!)
  }
  for (const match of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(match[1]!)
  for (const match of text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) out.push(match[1]!)
  return out
}

function graph(entry: string): { files: string[]; external: string[] } {
  const seen = new Set<string>()
  const external: string[] = []
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    for (const specifier of runtimeImports(file)) {
      if (specifier.startsWith('.')) visit(join(dirname(file), specifier))
      else external.push(`${specifier} (from ${file.slice(src.length + 1)})`)
    }
  }
  visit(join(src, entry))
  return { files: [...seen], external }
}

test.each([
  ['index.ts', []],
  ['hono.ts', []],
  ['elysia.ts', []],
])('%s imports nothing from Node or npm at run time', (entry, allowed) => {
  const { files, external } = graph(entry)
  expect(files.length).toBeGreaterThan(3)
  expect(external).toEqual(allowed)
})

test('the check sees run-time package imports (control: the Fastify entry needs fastify-plugin)', () => {
  expect(graph('fastify.ts').external).toEqual(['fastify-plugin (from adapters/fastify.ts)'])
})
