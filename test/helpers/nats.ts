/**
 * A throwaway nats-server with JetStream for tests: a reserved port (never the system's 4222),
 * its own store directory, started and stopped (and restarted with the same store, for outage
 * tests) as a child process. The same shape as `redis.ts`.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { reservePort } from './redis.ts'
import { waitFor } from './wait.ts'

/** A nats-server child process. */
export interface NatsServer {
  readonly port: number
  readonly url: string
  /** Whether it is running. */
  readonly running: boolean
  /** The process id while running. */
  readonly pid: number | undefined
  /** Starts it again on the same port, with the same store (unless `wipe()` emptied it). */
  start(): Promise<void>
  /** Stops it (SIGKILL: like a crash, and quick); the port stays reserved for `start()`. */
  stop(): Promise<void>
  /** Empties its store while it is stopped: the next `start()` has lost every stream. */
  wipe(): Promise<void>
  /**
   * Freezes it (SIGSTOP) and resolves once it is stopped: connections stay open, nothing is
   * answered. `thaw()` ends it.
   */
  freeze(): Promise<void>
  /** Lets a frozen server run again (SIGCONT). */
  thaw(): void
  /** Stops it for good, gives its port back and removes its store: call in teardown. */
  close(): Promise<void>
}

/** Whether process `pid` is stopped (state T in /proc); true where there is no /proc. */
function stopped(pid: number): boolean {
  if (!existsSync('/proc/self/stat')) return true
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return text.slice(text.lastIndexOf(') ') + 2)[0] === 'T'
}

function launch(port: number, dir: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'nats-server',
      ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir, '-m', '0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let output = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`nats-server did not start in 10 s:\n${output}`))
    }, 10_000)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(new Error(`Cannot run nats-server (is it installed?): ${error.message}`))
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`nats-server exited with ${code}:\n${output}`))
    })
    // nats-server logs to stderr.
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('Server is ready')) {
        clearTimeout(timer)
        child.removeAllListeners('exit')
        child.stdout?.removeAllListeners('data')
        child.stderr?.removeAllListeners('data')
        // Keep draining its output, so a chatty server never blocks on a full pipe.
        child.stdout?.resume()
        child.stderr?.resume()
        resolve(child)
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
  })
}

/** Starts nats-server with JetStream on a reserved port and a fresh store. Call `close()`. */
export async function startNats(): Promise<NatsServer> {
  const { port, release: releasePort } = await reservePort()
  const dir = await mkdtemp(join(tmpdir(), 'oven-test-nats-'))
  const release = async () => {
    await releasePort()
    await rm(dir, { recursive: true, force: true })
  }
  let child: ChildProcess | undefined
  try {
    child = await launch(port, dir)
  } catch (error) {
    await release()
    throw error
  }
  const stop = async () => {
    const running = child
    child = undefined
    if (!running || running.exitCode !== null) return
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve())
      // A frozen process takes SIGKILL too.
      running.kill('SIGKILL')
    })
  }
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    get running() {
      return child !== undefined
    },
    get pid() {
      return child?.pid
    },
    async start() {
      if (!child) child = await launch(port, dir)
    },
    stop,
    async wipe() {
      if (child) throw new Error('wipe: nats-server is running')
      await rm(join(dir, 'jetstream'), { recursive: true, force: true })
    },
    async freeze() {
      const pid = child?.pid
      if (pid === undefined || !child?.kill('SIGSTOP')) {
        throw new Error('freeze: nats-server is not running')
      }
      // kill() returns before every thread has stopped: on a busy machine a request sent right
      // after could still be answered. Wait until Linux reports the process stopped.
      await waitFor('nats-server stopped by SIGSTOP', () => stopped(pid), { interval: 1 })
    },
    thaw() {
      if (!child?.kill('SIGCONT')) throw new Error('thaw: nats-server is not running')
    },
    async close() {
      await stop()
      await release()
    },
  }
}
