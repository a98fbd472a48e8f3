/**
 * A throwaway redis-server for tests: a free port, no persistence, started and stopped (and
 * restarted, for outage tests) as a child process (`server-process.ts`). Never touches a system
 * Redis on 6379.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type ServerCommand, ServerProcess } from './server-process.ts'

/** A redis-server child process. */
export interface RedisServer {
  readonly port: number
  readonly url: string
  /** Whether it is running. */
  readonly running: boolean
  /** The process id while running. */
  readonly pid: number | undefined
  /** Starts it again on the same port (empty: nothing was saved). */
  start(): Promise<void>
  /** Stops it (SIGKILL: like a crash, and quick); the port stays reserved for `start()`. */
  stop(): Promise<void>
  /**
   * Freezes it (SIGSTOP): its connections stay open and take commands, but nothing is answered
   * (a hung server, or a network that drops packets without closing anything). `thaw()` ends it.
   */
  freeze(): void
  /** Lets a frozen server run again (SIGCONT). */
  thaw(): void
  /** Stops it for good and gives its port back: call in teardown. */
  close(): Promise<void>
}

/** The command line of a redis-server on `port`; with a directory, persistent. */
function redisCommand(port: number, dir: string | undefined, extra: string[]): ServerCommand {
  // With a directory: an append-only file synced on every write, so a kill loses nothing.
  const persistence = dir
    ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir]
    : ['--appendonly', 'no']
  return {
    program: 'redis-server',
    args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, ...extra],
    ready: 'Ready to accept connections',
  }
}

/** A redis-server child process; see {@link RedisServer}. */
class RedisProcess extends ServerProcess implements RedisServer {
  freeze(): void {
    this.signal('SIGSTOP', 'freeze')
  }
}

// Redis ports come from below the kernel's ephemeral range (32768-60999 on Linux): a port
// from `listen(0)`, once freed by an outage test's stop(), could be handed to another test's
// server or to any outgoing socket before the restart, and the broker would "reconnect" to a
// stranger. Here nothing else draws from this range, and a lock file reserves the port across
// the test worker processes for as long as the RedisServer lives, outages included.
const RESERVED_FROM = 20_000
const RESERVED_COUNT = 12_000

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Reserves a port of the range above for this process (nothing listens on it, and no other test
 * takes it, until `release()`); returns it with the function that frees it. Also the port to
 * use for "a server that is not there".
 */
export async function reservePort(): Promise<{ port: number; release: () => Promise<void> }> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = RESERVED_FROM + Math.floor(Math.random() * RESERVED_COUNT)
    const lock = join(tmpdir(), `oven-test-redis-${port}.lock`)
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' })
    } catch {
      // Held by another worker — unless that worker died without cleaning up.
      const { readFile } = await import('node:fs/promises')
      const owner = Number(await readFile(lock, 'utf8').catch(() => '0'))
      if (owner > 0 && !pidAlive(owner)) await rm(lock, { force: true })
      continue
    }
    if (await portIsFree(port)) return { port, release: () => rm(lock, { force: true }) }
    await rm(lock, { force: true })
  }
  throw new Error('No free port for redis-server in 200 tries')
}

/**
 * Starts redis-server on a reserved port. Call `close()` in teardown. With `persist`, it keeps
 * its data across `stop()` and `start()` (a restart that loses nothing); without, a restart
 * starts empty. `args` are passed to every start (e.g. `['--key-load-delay', '100']`).
 */
export async function startRedis(
  options: { persist?: boolean; args?: string[] } = {},
): Promise<RedisServer> {
  const extra = options.args ?? []
  const { port, release: releasePort } = await reservePort()
  const dir = options.persist ? await mkdtemp(join(tmpdir(), 'oven-test-redis-')) : undefined
  const release = async () => {
    await releasePort()
    if (dir) await rm(dir, { recursive: true, force: true })
  }
  const command = redisCommand(port, dir, extra)
  return ServerProcess.started(
    new RedisProcess(port, `redis://127.0.0.1:${port}`, command, release),
  )
}
