/**
 * A server the tests run as a child process (redis-server, nats-server) on a port reserved for
 * it: started once it prints its ready line, crashed (SIGKILL) and restarted on the same port
 * for outage tests, frozen and thawed for hung-server tests. `redis.ts` and `nats.ts` give it
 * its command line.
 */

import { type ChildProcess, spawn } from 'node:child_process'

/** How to run one server: the program, its arguments and the line it prints once it serves. */
export interface ServerCommand {
  readonly program: string
  readonly args: readonly string[]
  readonly ready: string
}

/** Runs `command` and resolves once it has printed its ready line (on stdout or stderr). */
function launch({ program, args, ready }: ServerCommand): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${program} did not start in 10 s:\n${output}`))
    }, 10_000)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(new Error(`Cannot run ${program} (is it installed?): ${error.message}`))
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${program} exited with ${code}:\n${output}`))
    })
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (!output.includes(ready)) return
      clearTimeout(timer)
      child.removeAllListeners('exit')
      child.stdout?.removeAllListeners('data')
      child.stderr?.removeAllListeners('data')
      // Keep draining its output, so a chatty server never blocks on a full pipe.
      child.stdout?.resume()
      child.stderr?.resume()
      resolve(child)
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
  })
}

/** A server child process on a reserved port; see the module comment. */
export class ServerProcess {
  readonly port: number
  readonly url: string
  readonly #command: ServerCommand
  /** Gives the port (and any directory) back, once. */
  readonly #release: () => Promise<void>
  #child: ChildProcess | undefined

  constructor(port: number, url: string, command: ServerCommand, release: () => Promise<void>) {
    this.port = port
    this.url = url
    this.#command = command
    this.#release = release
  }

  /** Whether it is running. */
  get running(): boolean {
    return this.#child !== undefined
  }

  /** The process id while running. */
  get pid(): number | undefined {
    return this.#child?.pid
  }

  /** Starts it (again) on the same port, unless it is running. */
  async start(): Promise<void> {
    if (!this.#child) this.#child = await launch(this.#command)
  }

  /** Stops it (SIGKILL: like a crash, and quick); the port stays reserved for `start()`. */
  async stop(): Promise<void> {
    const running = this.#child
    this.#child = undefined
    if (!running || running.exitCode !== null) return
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve())
      // A frozen process takes SIGKILL too.
      running.kill('SIGKILL')
    })
  }

  /** Sends `signal` and returns the pid; throws, naming `what`, when it is not running. */
  protected signal(signal: NodeJS.Signals, what: string): number {
    const child = this.#child
    if (child?.pid === undefined || !child.kill(signal)) {
      throw new Error(`${what}: ${this.#command.program} is not running`)
    }
    return child.pid
  }

  /** Lets a frozen server run again (SIGCONT). */
  thaw(): void {
    this.signal('SIGCONT', 'thaw')
  }

  /** Stops it for good and gives its port back: call in teardown. */
  async close(): Promise<void> {
    await this.stop()
    await this.#release()
  }

  /** Starts `server`, giving its reservations back if it cannot start. */
  static async started<S extends ServerProcess>(server: S): Promise<S> {
    try {
      await server.start()
    } catch (error) {
      await server.#release()
      throw error
    }
    return server
  }
}
