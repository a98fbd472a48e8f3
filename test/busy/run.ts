/**
 * `npm run test:busy [-- vitest arguments]`: the suite while every core is kept busy by other
 * processes, so a test that passes only on an idle machine fails here, not by chance in CI
 * (which runs on two cores shared with other work).
 *
 * - Starts one busy-loop process per core (`os.availableParallelism()`), at normal priority.
 * - Runs `vitest run` with the given arguments (none: the whole fast suite, `vitest.config.ts`),
 *   or, after `--command`, any other command (`npx tsx test/busy/run.ts --command npm test`).
 * - Always stops the load afterwards (success, failure, Ctrl-C, SIGTERM) and exits with the
 *   command's exit code (128 + signal number when stopped by a signal).
 *
 * Bounded in time: the command is stopped after `BUSY_MAX_SECONDS` (default 1800, exit code 1),
 * and every load process ends by itself at that deadline or as soon as this process is gone,
 * even if this one was killed with SIGKILL.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { availableParallelism, constants } from 'node:os'
import { fileURLToPath } from 'node:url'

const maxSeconds = Number(process.env.BUSY_MAX_SECONDS ?? 1800)
if (!(maxSeconds > 0))
  throw new Error(`BUSY_MAX_SECONDS: expected seconds > 0, received ${maxSeconds}`)

// Spins in 50 ms slices; between slices, checks the deadline and that its parent still exists.
const loop = `
const parent = ${process.pid}, end = Date.now() + ${maxSeconds * 1000}
for (;;) {
  const slice = Date.now() + 50
  while (Date.now() < slice) {}
  if (Date.now() > end) process.exit(0)
  try { process.kill(parent, 0) } catch { process.exit(0) }
}`

const args = process.argv.slice(2)
const [file, ...rest] =
  args[0] === '--command'
    ? args.slice(1)
    : [
        process.execPath,
        fileURLToPath(new URL('../../node_modules/vitest/vitest.mjs', import.meta.url)),
        'run',
        ...args,
      ]
if (file === undefined) throw new Error('--command: expected a command to run, received nothing')

const cores = availableParallelism()
const load: ChildProcess[] = []
for (let i = 0; i < cores; i++) {
  load.push(spawn(process.execPath, ['-e', loop], { stdio: 'ignore' }))
}
function stopLoad() {
  for (const child of load.splice(0)) child.kill('SIGKILL')
}
// Also on any exit path, including an exception thrown below.
process.on('exit', stopLoad)

const started = Date.now()
console.info(`test:busy: ${cores} busy-loop processes, then: ${[file, ...rest].join(' ')}`)
// Its own process group, so a signal reaches everything it started (npm -> sh -> vitest -> workers).
const command = spawn(file, rest, { stdio: 'inherit', detached: true })
function signalCommand(signal: NodeJS.Signals) {
  try {
    process.kill(-(command.pid ?? 0), signal)
  } catch {
    // Already gone.
  }
}

let timedOut = false
const deadline = setTimeout(() => {
  timedOut = true
  console.error(`test:busy: still running after ${maxSeconds} s: stopping it`)
  signalCommand('SIGTERM')
  setTimeout(() => signalCommand('SIGKILL'), 10_000).unref()
}, maxSeconds * 1000)

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    stopLoad()
    signalCommand(signal)
  })
}

command.once('error', (error) => {
  console.error(`test:busy: cannot run ${file}: ${error.message}`)
  process.exit(1)
})
command.once('exit', (code, signal) => {
  clearTimeout(deadline)
  stopLoad()
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  const status = timedOut ? 1 : (code ?? 128 + (signal ? constants.signals[signal] : 0))
  console.info(`test:busy: exit code ${status} after ${seconds} s under load`)
  process.exit(status)
})
