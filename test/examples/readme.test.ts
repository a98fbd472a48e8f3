import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, test } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))

/**
 * The runnable examples: every `.ts` file, except that an app's folder runs its `server.ts`
 * (and its `client.ts`, when it has one), and a Next.js app's folder runs as a whole.
 */
function scripts(dir: string): string[] {
  const entries = readdirSync(dir, { withFileTypes: true })
  // A Next.js app runs as a whole: `npx next dev <folder>`.
  if (entries.some((entry) => entry.name === 'next.config.ts')) return [relative(root, dir)]
  if (dir !== join(root, 'examples') && entries.some((entry) => entry.name === 'server.ts')) {
    return ['server.ts', 'client.ts']
      .filter((name) => entries.some((entry) => entry.name === name))
      .map((name) => relative(root, join(dir, name)))
  }
  return entries.flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === 'demo' ? [] : scripts(path)
    return entry.name.endsWith('.ts') ? [relative(root, path)] : []
  })
}

test('examples/README.md runs only files that exist, and lists every example', () => {
  const readme = readFileSync(join(root, 'examples/README.md'), 'utf8')
  const commands = [...readme.matchAll(/(?:npx tsx|bun) (\S+\.ts)|npx next dev ([^\s`]+)/g)].map(
    (match) => (match[1] ?? match[2]) as string,
  )
  for (const file of commands) expect(existsSync(join(root, file)), file).toBe(true)
  expect(new Set(commands)).toEqual(new Set(scripts(join(root, 'examples'))))
  const start = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts.start
  // `exec`: the shell npm runs the script in becomes node, so a signal npm forwards reaches the
  // server (demo-stop.test.ts runs `npm start` and stops it).
  expect(start).toBe('exec node --import tsx examples/demo/server.ts')
})
