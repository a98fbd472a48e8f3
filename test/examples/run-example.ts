/**
 * Runs an example as a child process, the way a reader would (`tsx examples/<file>.ts`,
 * `bun examples/<file>.ts` for a Bun one, or `npm start` for the demo), and gives a test its
 * URL and what it prints. Every child is killed in `stopAllExamples`.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { findBinary } from '../integrations/fixtures/runtime.ts'

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
  /**
   * Kills the process (SIGKILL: teardown need not be polite), and its whole process group when
   * it was started in its own, and waits for it to end.
   */
  stop(): Promise<void>
}

const running = new Set<RunningExample>()

/**
 * The test timeout of a file whose tests run examples (`vi.setConfig({ testTimeout })`). Each
 * start may take up to its 30 s deadline (tsx compiles the example first), and some tests
 * start two or three. Measured with one busy process per core on a machine already at load
 * 13: such tests took up to 17.6 s, and the Redis demo test went past the default 20 s. The
 * test's own deadlines (30 s to start, 10 s per line) must fire first and say what was slow.
 */
export const EXAMPLE_TEST_TIMEOUT = 90_000

/** Options of {@link runExample}. */
export interface RunOptions {
  args?: string[]
  env?: Record<string, string>
  /** Wait for the `listening on` line (default true). */
  listen?: boolean
  timeout?: number
  /**
   * Starts it in its own process group, so that `stop()` kills what it started too (an example
   * that launches servers of its own).
   */
  group?: boolean
}

/**
 * Starts `examples/<file>` with `PORT=0` (a free port) and waits for `listening on <url>`.
 */
export function runExample(file: string, options: RunOptions = {}): Promise<RunningExample> {
  const args = ['--import', 'tsx', `examples/${file}`, ...(options.args ?? [])]
  return run(file, process.execPath, args, options.group ?? false, options)
}

/**
 * Starts `examples/<file>` under Bun (`bun examples/<file>`, as its header says to run it), with
 * `PORT=0`, and waits for `listening on <url>`.
 */
export function runBunExample(file: string, options: RunOptions = {}): Promise<RunningExample> {
  const args = [`examples/${file}`, ...(options.args ?? [])]
  return run(file, findBinary('bun'), args, false, options)
}

/**
 * Runs `npm start` as a user does, in its own process group (as a terminal runs a command),
 * so a test can send what Ctrl+C sends: a signal to the whole group (`process.kill(-pid)`).
 */
export function runNpmStart(options: RunOptions = {}): Promise<RunningExample> {
  return run('npm start', 'npm', ['start', ...(options.args ?? [])], true, options)
}

async function run(
  file: string,
  command: string,
  args: string[],
  detached: boolean,
  options: RunOptions,
): Promise<RunningExample> {
  const child = spawn(command, args, {
    cwd: root,
    env: { ...process.env, PORT: '0', NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached,
  })
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
  // `ended`: no more output can come (the process has exited and its pipes are closed), so a
  // line not printed yet never will be. `exited` settles on exit, which can come first.
  let ended = false
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    child.once('close', () => {
      ended = true
      for (const watcher of watchers) watcher()
    })
    // Not started at all (`npm` not on PATH): say so instead of waiting for a line.
    child.once('error', (error) => {
      lines.push(`${command}: ${error.message}`)
      ended = true
      for (const watcher of watchers) watcher()
      resolve({ code: null, signal: null })
    })
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
      if (detached && child.pid !== undefined) {
        // The group may outlive its leader (a child that missed the signal): end all of it.
        try {
          process.kill(-child.pid, 'SIGKILL')
        } catch (error) {
          // ESRCH: the whole group has already ended. Anything else is a real failure.
          if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
        }
      }
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
