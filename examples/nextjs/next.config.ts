import { realpathSync } from 'node:fs'
import { join, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { NextConfig } from 'next'

// This example compiles Oven from the repository's src/ (the `paths` of tsconfig.json), and
// Turbopack compiles only files under its root: the root is the repository, or the folder that
// holds both it and its node_modules where that is a link to elsewhere (a git worktree). An app
// that installs `oven-sse` from npm needs none of this.
const repository = fileURLToPath(new URL('../..', import.meta.url))
const modules = realpathSync(join(repository, 'node_modules'))
let root = repository
while (!(modules + sep).startsWith(root)) root = join(root, '..') + sep

const config: NextConfig = {
  turbopack: { root },
  outputFileTracingRoot: root,
}

export default config
