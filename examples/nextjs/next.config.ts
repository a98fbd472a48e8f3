import { realpathSync } from 'node:fs'
import { join, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { NextConfig } from 'next'

const repository = fileURLToPath(new URL('../..', import.meta.url))
const modules = realpathSync(join(repository, 'node_modules'))
let root = repository
while (!(modules + sep).startsWith(root)) root = join(root, '..') + sep

const config: NextConfig = {
  turbopack: { root },
  outputFileTracingRoot: root,
}

export default config
