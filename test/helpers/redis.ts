/**
 * A throwaway redis-server for tests: a free port, no persistence, started and stopped (and
 * restarted, for outage tests) as a child process. Never touches a system Redis on 6379.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:net'

/** A redis-server child process. */
export interface RedisServer {
  readonly port: number
  readonly url: string
  /** Whether it is running. */
  readonly running: boolean
  /** Starts it again on the same port (empty: nothing was saved). */
  start(): Promise<void>
  /** Stops it (SIGKILL: like a crash, and quick). */
  stop(): Promise<void>
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

function launch(port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let output = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`redis-server did not start in 10 s:\n${output}`))
    }, 10_000)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(new Error(`Cannot run redis-server (is it installed?): ${error.message}`))
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`redis-server exited with ${code}:\n${output}`))
    })
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer)
        child.removeAllListeners('exit')
        resolve(child)
      }
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
  })
}

/** Starts redis-server on a free port. Call `stop()` in teardown. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort()
  let child: ChildProcess | undefined = await launch(port)
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== undefined
    },
    async start() {
      if (!child) child = await launch(port)
    },
    async stop() {
      const running = child
      child = undefined
      if (!running || running.exitCode !== null) return
      await new Promise<void>((resolve) => {
        running.once('exit', () => resolve())
        running.kill('SIGKILL')
      })
    },
  }
}
