/**
 * Type-checks the TypeScript blocks of the README and of `docs/*.md`, so an example a reader
 * copies compiles under the same `strict` settings as Oven itself.
 *
 * Every fenced block marked `ts` or `typescript` becomes its own module (one block's names
 * never leak into another) and all of them are checked in one TypeScript program, with the
 * repository's `tsconfig.json` less `noUnusedLocals`/`noUnusedParameters` (an example may
 * declare something only to show it). `oven-sse`, `oven-sse/<subpath>` and Deno's
 * `npm:oven-sse` resolve to `src/`, so the blocks are checked against the code as it is.
 * The `Bun` and `Deno` globals the runtime pages use are declared by `RUNTIME_GLOBALS` below.
 *
 * A block that is a fragment of a larger program (it uses `app`, `req` or a function of the
 * reader's own) says what it assumes in a hidden prelude: an HTML comment right before the
 * fence (blank lines may separate them), whose TypeScript is checked in front of the block and
 * is not shown on the rendered page:
 *
 * ````md
 * <!-- ts-prelude
 * import type { IncomingMessage, ServerResponse } from 'node:http'
 * declare const req: IncomingMessage, res: ServerResponse
 * -->
 * ```ts
 * sendEventStream(req, res, ['hello'])
 * ```
 * ````
 *
 * There is no way to skip a block: fix it, or state in its prelude what it takes for granted.
 */

import { readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import ts from 'typescript'

/**
 * The parts of Bun's and Deno's globals that docs/bun.md and docs/deno.md use, with the
 * signatures of `@types/bun` and Deno's `lib.deno.ns.d.ts` (narrowed to what the pages call).
 * Checked only with the snippets: the project's own code must not see these globals.
 */
const RUNTIME_GLOBALS = `
declare const Bun: {
  serve(options: {
    port?: number
    hostname?: string
    idleTimeout?: number
    fetch(request: Request): Response | Promise<Response>
    error?(error: Error): Response | Promise<Response>
  }): { port: number; stop(): void }
}
declare const Deno: {
  serve(
    options: {
      port?: number
      hostname?: string
      onError?: (error: unknown) => Response | Promise<Response>
    },
    handler: (request: Request) => Response | Promise<Response>,
  ): { finished: Promise<void>; shutdown(): Promise<void> }
}
`

/** One TypeScript block of a markdown file, with what its hidden prelude declares. */
export interface Snippet {
  /** The markdown file, relative to the repository root. */
  file: string
  /** 1-based line of the block's first code line in the markdown file. */
  line: number
  /** The block's code, with the fence's indentation removed. */
  code: string
  /** The TypeScript of the `<!-- ts-prelude … -->` comment before the block, or `''`. */
  prelude: string
  /** 1-based line of the prelude's first code line (0 when there is none). */
  preludeLine: number
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/
const CHECKED = new Set(['ts', 'typescript'])
const PRELUDE_OPEN = /^\s*<!--\s*ts-prelude\b(.*)$/

/**
 * Finds the TypeScript blocks of one markdown text and their preludes. Throws when a prelude
 * is not followed by a TypeScript block (it would otherwise be silently ignored).
 */
export function extractSnippets(markdown: string, file: string): Snippet[] {
  const lines = markdown.split(/\r?\n/)
  const snippets: Snippet[] = []
  let prelude: { code: string; line: number } | undefined
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i] as string
    const opener = PRELUDE_OPEN.exec(text)
    if (opener) {
      const start = i
      const body: string[] = []
      const first = (opener[1] as string).replace(/-->\s*$/, '')
      if (first.trim() !== '') body.push(first)
      while (!(lines[i] as string).includes('-->')) {
        i++
        if (i >= lines.length) throw new Error(`${file}:${start + 1}: ts-prelude is never closed`)
        const next = lines[i] as string
        body.push(next.includes('-->') ? next.slice(0, next.indexOf('-->')) : next)
      }
      prelude = { code: body.join('\n'), line: start + (first.trim() === '' ? 2 : 1) }
      continue
    }
    const fence = FENCE.exec(text)
    if (fence) {
      const [, indent = '', marks = '', lang = ''] = fence
      const code: string[] = []
      const start = i + 1
      const close = new RegExp(`^\\s*\\${marks[0]}{${marks.length},}\\s*$`)
      for (i++; i < lines.length && !close.test(lines[i] as string); i++) {
        const inner = lines[i] as string
        code.push(inner.startsWith(indent) ? inner.slice(indent.length) : inner.trimStart())
      }
      if (CHECKED.has(lang.toLowerCase())) {
        snippets.push({
          file,
          line: start + 1,
          code: code.join('\n'),
          prelude: prelude?.code ?? '',
          preludeLine: prelude?.line ?? 0,
        })
      } else if (prelude) {
        throw new Error(
          `${file}:${prelude.line}: ts-prelude precedes a \`${lang}\` block, not a ts one`,
        )
      }
      prelude = undefined
      continue
    }
    if (prelude && text.trim() !== '') {
      throw new Error(`${file}:${prelude.line}: ts-prelude is not followed by a ts block`)
    }
  }
  if (prelude) throw new Error(`${file}:${prelude.line}: ts-prelude is not followed by a ts block`)
  return snippets
}

/** Reads the markdown files (paths relative to `root`) and extracts their TypeScript blocks. */
export function readSnippets(root: string, files: readonly string[]): Snippet[] {
  return files.flatMap((file) => extractSnippets(readFileSync(join(root, file), 'utf8'), file))
}

/**
 * Type-checks every snippet in one program and returns one line per problem, as
 * `file.md:line: TSnnnn message`, pointing into the markdown file. An empty array means
 * every block compiles.
 */
export function checkSnippets(root: string, snippets: readonly Snippet[]): string[] {
  const parsed = ts.parseJsonConfigFileContent(
    ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile).config,
    ts.sys,
    root,
  )
  const options: ts.CompilerOptions = {
    ...parsed.options,
    noEmit: true,
    noUnusedLocals: false,
    noUnusedParameters: false,
    paths: {
      'oven-sse': ['./src/index.ts'],
      'oven-sse/*': ['./src/*.ts'],
      'npm:oven-sse': ['./src/index.ts'],
    },
    pathsBasePath: root,
  }
  // The virtual files sit in this (real) folder, so the repository's package.json makes them
  // ES modules and its node_modules resolves the frameworks' imports.
  const folder = join(root, 'test/docs')
  const texts = new Map<string, string>([
    [join(folder, 'snippet-runtime-globals.d.ts'), RUNTIME_GLOBALS],
  ])
  const blocks = new Map<string, { snippet: Snippet; preludeLines: number }>()
  snippets.forEach((snippet, index) => {
    const name = join(
      folder,
      `snippet-${index}-${snippet.file.replace(/\W+/g, '_')}-${snippet.line}.ts`,
    )
    const prelude = snippet.prelude === '' ? '' : `${snippet.prelude}\n`
    // `export {}` keeps a block without imports a module, as it would be in a reader's file.
    texts.set(name, `${prelude}${snippet.code}\nexport {}\n`)
    blocks.set(name, { snippet, preludeLines: prelude.split('\n').length - 1 })
  })
  const host = ts.createCompilerHost(options)
  const fileExists = host.fileExists.bind(host)
  const readFile = host.readFile.bind(host)
  const getSourceFile = host.getSourceFile.bind(host)
  host.fileExists = (path) => texts.has(path) || fileExists(path)
  host.readFile = (path) => texts.get(path) ?? readFile(path)
  host.getSourceFile = (path, language, ...rest) => {
    const text = texts.get(path)
    return text === undefined
      ? getSourceFile(path, language, ...rest)
      : ts.createSourceFile(path, text, language)
  }
  const program = ts.createProgram({ rootNames: [...texts.keys()], options, host })
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n  ')
    const entry = diagnostic.file && blocks.get(diagnostic.file.fileName)
    if (!diagnostic.file || diagnostic.start === undefined) return `TS${diagnostic.code} ${message}`
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start)
    if (!entry) {
      return `${relative(root, diagnostic.file.fileName)}:${line + 1}: TS${diagnostic.code} ${message}`
    }
    const { snippet, preludeLines } = entry
    const where =
      line < preludeLines
        ? `${snippet.file}:${snippet.preludeLine + line} (ts-prelude)`
        : `${snippet.file}:${snippet.line + line - preludeLines}`
    return `${where}: TS${diagnostic.code} ${message}`
  })
}
