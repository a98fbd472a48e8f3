/**
 * Runs an example as a child process, the way a reader would (`tsx examples/<file>.ts`), and
 * gives a test its URL and what it prints. Every child is killed in `stopAllExamples`.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))

/** A running example. */
export interface RunningExample {
  /** `http://127.0.0.1:<port>`, from the `listening on` line (empty for client-only modes). */
  url: string
  child: ChildProcess
  /** Every line printed so far (stdout and stderr). */
  lines: string[]
  /** Waits for a printed line matching `pattern`; returns it. */
  waitForLine(pattern: RegExp, timeout?: number): Promise<string>
  /** Settles with the exit code and signal once the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Kills the process (SIGKILL: teardown need not be polite) and waits for it to end. */
  stop(): Promise<void>
}

const running = new Set<RunningExample>()

/** Options of {@link runExample}. */
export interface RunOptions {
  args?: string[]
  env?: Record<string, string>
  /** Wait for the `listening on` line (default true). */
  listen?: boolean
  timeout?: number
}

/**
 * Starts `examples/<file>` with `PORT=0` (a free port) and waits for `listening on <url>`.
 */
export async function runExample(file: string, options: RunOptions = {}): Promise<RunningExample> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', `examples/${file}`, ...(options.args ?? [])],
    {
      cwd: root,
      env: { ...process.env, PORT: '0', NO_COLOR: '1', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  const lines: string[] = []
  const watchers = new Set<() => void>()
  const onData = (prefix: string) => {
    let rest = ''
    return (chunk: Buffer) => {
      rest += chunk.toString('utf8')
      const parts = rest.split(/\r?\n|\r/)
      rest = parts.pop() ?? ''
      for (const part of parts) {
        lines.push(part)
        if (process.env.EXAMPLES_VERBOSE) console.log(`${prefix} ${part}`)
      }
      for (const watcher of watchers) watcher()
    }
  }
  child.stdout.on('data', onData(`[${file}]`))
  child.stderr.on('data', onData(`[${file} !]`))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      for (const watcher of watchers) watcher()
      resolve({ code, signal })
    })
  })
  let ended = false
  void exited.then(() => {
    ended = true
  })

  const waitForLine = (pattern: RegExp, timeout = 10_000): Promise<string> =>
    new Promise((resolve, reject) => {
      let index = 0
      const check = () => {
        for (; index < lines.length; index++) {
          const line = lines[index] as string
          if (pattern.test(line)) {
            done()
            resolve(line)
            return
          }
        }
        if (ended) {
          done()
          reject(new Error(`${file} exited before printing ${pattern}:\n${lines.join('\n')}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`${file} did not print ${pattern} in ${timeout} ms:\n${lines.join('\n')}`))
      }, timeout)
      const done = () => {
        clearTimeout(timer)
        watchers.delete(check)
      }
      watchers.add(check)
      check()
    })

  const entry: RunningExample = {
    url: '',
    child,
    lines,
    waitForLine,
    exited,
    async stop() {
      running.delete(entry)
      if (ended) return
      child.kill('SIGKILL')
      await exited
    },
  }
  running.add(entry)
  if (options.listen !== false) {
    // A deadline, not a delay: tsx compiles the example first, slow on a busy machine.
    const line = await waitForLine(/listening on http:\/\/\S+/, options.timeout ?? 30_000)
    entry.url = (line.match(/http:\/\/[^\s/]+/) as RegExpMatchArray)[0]
  }
  return entry
}

/** Stops every example still running; call from `afterEach`. */
export async function stopAllExamples(): Promise<void> {
  await Promise.all([...running].map((example) => example.stop()))
}
