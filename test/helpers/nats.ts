/**
 * A throwaway nats-server with JetStream for tests: a reserved port (never the system's 4222),
 * its own store directory, started and stopped (and restarted with the same store, for outage
 * tests) as a child process (`server-process.ts`), as `redis.ts` runs redis-server.
 */

import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { reservePort } from './redis.ts'
import { ServerProcess } from './server-process.ts'
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

/** A nats-server child process; see {@link NatsServer}. */
class NatsProcess extends ServerProcess implements NatsServer {
  readonly #dir: string

  constructor(port: number, dir: string, release: () => Promise<void>) {
    // nats-server logs to stderr.
    const command = {
      program: 'nats-server',
      args: ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir, '-m', '0'],
      ready: 'Server is ready',
    }
    super(port, `nats://127.0.0.1:${port}`, command, release)
    this.#dir = dir
  }

  async wipe(): Promise<void> {
    if (this.running) throw new Error('wipe: nats-server is running')
    await rm(join(this.#dir, 'jetstream'), { recursive: true, force: true })
  }

  async freeze(): Promise<void> {
    const pid = this.signal('SIGSTOP', 'freeze')
    // kill() returns before every thread has stopped: on a busy machine a request sent right
    // after could still be answered. Wait until Linux reports the process stopped.
    await waitFor('nats-server stopped by SIGSTOP', () => stopped(pid), { interval: 1 })
  }
}

/** Starts nats-server with JetStream on a reserved port and a fresh store. Call `close()`. */
export async function startNats(): Promise<NatsServer> {
  const { port, release: releasePort } = await reservePort()
  const dir = await mkdtemp(join(tmpdir(), 'oven-test-nats-'))
  const release = async () => {
    await releasePort()
    await rm(dir, { recursive: true, force: true })
  }
  return ServerProcess.started(new NatsProcess(port, dir, release))
}
