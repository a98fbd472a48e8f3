import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, test } from 'vitest'
import { checkSnippets, extractSnippets, readSnippets, type Snippet } from './snippets.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))

/** README.md, every page under docs/, and the examples' and benchmarks' READMEs. */
function markdownFiles(): string[] {
  const docs = readdirSync(new URL('../../docs/', import.meta.url))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`)
  return ['README.md', ...docs.sort(), 'examples/README.md', 'bench/README.md']
}

/** A page with known mistakes, checked in the same program: proof the check can fail. */
const FLAWED_PAGE = [
  '# Page', //                                                                 line 1
  '',
  '```ts', //                                                                  line 3
  "import { sendEventStream } from 'oven-sse/node'",
  'async function* events({ signal }) {', //                                    line 5
  "  yield { data: 'x', signal }",
  '}',
  'sendEventStream(req, res, events)', //                                       line 8
  '```',
  '',
  '<!-- ts-prelude',
  "import type { IncomingMessage, ServerResponse } from 'node:http'",
  'declare const req: IncomingMessage, res: ServerResponse',
  '-->',
  '',
  '  ```typescript', //                                                         line 16
  "  import { sendEventStream } from 'oven-sse/node'",
  "  sendEventStream(req, res, ['fine'])",
  "  sendEventStream(req, res, ['fine'], { ping: 'often' })", //                line 19
  '  ```',
  '```js',
  'this is not checked',
  '```',
].join('\n')

let docs: Snippet[] = []
let flawed: Snippet[] = []
let problems: string[] = []

beforeAll(() => {
  docs = readSnippets(root, markdownFiles())
  flawed = extractSnippets(FLAWED_PAGE, 'flawed.md')
  // One program for both: it loads the frameworks' types once. Seconds when the machine is
  // idle, much longer on two cores shared with other work.
  problems = checkSnippets(root, [...docs, ...flawed])
}, 180_000)

test('every TypeScript block in README.md and docs/*.md type-checks under strict settings', () => {
  // The README alone has a dozen blocks; far fewer means the extraction broke.
  expect(docs.length).toBeGreaterThan(30)
  expect(problems.filter((problem) => !problem.startsWith('flawed.md:'))).toEqual([])
})

test('every wait in a documented source listens to ctx.signal (the advice of "Disconnects")', () => {
  // A sleep without the signal keeps a generator alive for up to its delay after the client
  // left. Flag the usual forms: a bare setTimeout promise, Bun.sleep, and sleep(...) calls
  // that do not pass the signal.
  const unsignalled = docs.flatMap((snippet) =>
    snippet.code.split('\n').flatMap((text, index) => {
      const call = /\bsetTimeout\(resolve\b|\bBun\.sleep\(|(?<!function )\bsleep\([^)]*\)/.exec(
        text,
      )
      return call && !/\bsignal\b/.test(text)
        ? [`${snippet.file}:${snippet.line + index}: ${text.trim()}`]
        : []
    }),
  )
  expect(unsignalled).toEqual([])
})

describe('the checker', () => {
  test('finds ts and typescript blocks, indented ones too, with their preludes', () => {
    expect(flawed.map(({ line, preludeLine }) => ({ line, preludeLine }))).toEqual([
      { line: 4, preludeLine: 0 },
      { line: 17, preludeLine: 12 },
    ])
  })

  test('reports an implicit any, a missing name and a wrong option at their markdown lines', () => {
    const found = problems.filter((problem) => problem.startsWith('flawed.md:'))
    expect(found.map((problem) => problem.slice(0, problem.indexOf(' ')))).toEqual([
      'flawed.md:5:',
      'flawed.md:8:',
      'flawed.md:8:',
      'flawed.md:19:',
    ])
    expect(found[0]).toContain('TS7031') // binding element implicitly has an 'any' type
    expect(found[1]).toContain("Cannot find name 'req'")
    expect(found[3]).toContain("'string' is not assignable")
  })

  test('a prelude that is not followed by a ts block is an error, not silently ignored', () => {
    expect(() =>
      extractSnippets('<!-- ts-prelude\ndeclare const x: 1\n-->\n\ntext', 'a.md'),
    ).toThrow('a.md:2: ts-prelude is not followed by a ts block')
    expect(() =>
      extractSnippets('<!-- ts-prelude declare const x: 1 -->\n```sh\nls\n```', 'b.md'),
    ).toThrow('b.md:1: ts-prelude precedes a `sh` block')
    expect(() => extractSnippets('<!-- ts-prelude\ndeclare const x: 1\n', 'c.md')).toThrow(
      'c.md:1: ts-prelude is never closed',
    )
  })
})
