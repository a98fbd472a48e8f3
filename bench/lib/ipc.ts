/**
 * A tiny request/response protocol over the Node IPC channel of a forked process: the
 * orchestrator asks a server for its CPU time or memory, or asks the load generator to run a
 * scenario, and waits (bounded in time) for the answer.
 */

import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** A command sent to a child process. */
export interface Request {
  id: number
  cmd: string
  args?: unknown
}

/** The answer to one {@link Request}. */
export interface Reply {
  id: number
  ok: boolean
  value?: unknown
  error?: string
}

type Handler = (args: never) => unknown

/**
 * Child side: answers the parent's commands with `handlers[cmd](args)`. A handler may return a
 * promise; a throw becomes an error reply, never a crash.
 */
export function answer(handlers: Record<string, Handler>): void {
  if (!process.send) throw new Error('bench: this process must be started with an IPC channel')
  process.on('message', async (message: Request) => {
    const handler = handlers[message.cmd]
    let reply: Reply
    try {
      if (!handler) throw new Error(`unknown command ${message.cmd}`)
      reply = { id: message.id, ok: true, value: await handler(message.args as never) }
    } catch (error) {
      reply = { id: message.id, ok: false, error: String((error as Error)?.stack ?? error) }
    }
    process.send?.(reply)
  })
  // The orchestrator going away must never leave a benchmark process behind.
  process.on('disconnect', () => process.exit(0))
  // An orderly exit on SIGTERM, so that `--cpu-prof` can write its profile.
  process.on('SIGTERM', () => process.exit(0))
}

/** Parent side: a forked child with `call(cmd, args)`. */
export class Child {
  readonly process: ChildProcess
  #next = 1
  #waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  #exited: Promise<number | null>

  constructor(script: string, args: string[] = [], nodeArgs: string[] = []) {
    this.process = fork(script, args, {
      execArgv: ['--import', sibling(import.meta.url, './ts-register.mjs'), ...nodeArgs],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    })
    this.process.on('message', (reply: Reply) => {
      const waiter = this.#waiting.get(reply.id)
      if (!waiter) return
      this.#waiting.delete(reply.id)
      if (reply.ok) waiter.resolve(reply.value)
      else waiter.reject(new Error(reply.error))
    })
    this.#exited = new Promise((resolve) => {
      this.process.on('exit', (code) => {
        for (const waiter of this.#waiting.values()) {
          waiter.reject(new Error(`bench: ${script} exited (code ${code})`))
        }
        this.#waiting.clear()
        resolve(code)
      })
    })
  }

  /** Sends `cmd` and waits for the answer, at most `timeout` ms. */
  call<T>(cmd: string, args?: unknown, timeout = 60_000): Promise<T> {
    const id = this.#next++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id)
        reject(new Error(`bench: "${cmd}" took more than ${timeout} ms`))
      }, timeout)
      this.#waiting.set(id, {
        resolve: (value) => {
          clearTimeout(timer)
          resolve(value as T)
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        },
      })
      this.process.send({ id, cmd, args } satisfies Request)
    })
  }

  /** Kills the child (SIGKILL after `grace` ms) and waits for it to exit. */
  async stop(grace = 2000): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return
    this.process.kill('SIGTERM')
    const timer = setTimeout(() => this.process.kill('SIGKILL'), grace)
    await this.#exited
    clearTimeout(timer)
  }
}

/** The absolute path of a file next to `base` (an `import.meta.url`). */
export function sibling(base: string, relative: string): string {
  return fileURLToPath(new URL(relative, base))
}
