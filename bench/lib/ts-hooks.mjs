// Module hooks for the benchmark's child processes: TypeScript in, plain JavaScript out, with
// types stripped by `ts.transpileModule` and nothing added.
//
// Why not tsx here: tsx compiles with esbuild's `keepNames`, which wraps every function in a
// `__name(fn, "…")` call that gives each closure its own property store. Measured with heap
// snapshots: 10 such closures per idle Oven stream cost ~2.5 KiB of heap per connection, and
// a `defineProperty` per closure made on a hot path. Users run Oven compiled by tsc, which
// adds none of that, and the peers run from their published JavaScript: so must Oven here.
import { readFile } from 'node:fs/promises'
import ts from 'typescript'

const options = {
  module: ts.ModuleKind.ESNext,
  target: ts.ScriptTarget.ES2022,
  verbatimModuleSyntax: true,
  sourceMap: false,
}

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts') || url.includes('/node_modules/')) {
    return next(url, context)
  }
  const source = await readFile(new URL(url), 'utf8')
  const { outputText } = ts.transpileModule(source, { fileName: url, compilerOptions: options })
  return { format: 'module', source: outputText, shortCircuit: true }
}
