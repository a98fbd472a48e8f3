/**
 * One Redis connection for the cluster helpers (the connection limiter, presence): the client
 * (made from a URL and owned, or the caller's), the `{prefix}:` key namespace, and commands that
 * settle within `commandTimeout`.
 *
 * `RedisBroker` keeps its own sending: a publish there must also tell "certainly not published"
 * from "may have been", and reads wait out a Redis still loading its data.
 *
 * @internal
 * @module
 */

import { createHash } from 'node:crypto'
import { createClient } from 'redis'
import { invalidOption } from '../errors.ts'
import { setDeadline } from './deadline.ts'
import { checkDelay } from './delay.ts'

/**
 * The node-redis client methods Oven's cluster helpers use: a client from `createClient()` of
 * the `redis` package (v5 or v6) fits, as does the `RedisClientLike` of `RedisBroker`.
 */
export interface RedisCommandClient {
  readonly isOpen: boolean
  readonly isReady: boolean
  connect(): Promise<unknown>
  sendCommand(args: string[], options?: { abortSignal?: AbortSignal }): Promise<unknown>
  // biome-ignore lint/suspicious/noExplicitAny: node-redis types event listeners with any[]
  on(event: string, listener: (...args: any[]) => void): unknown
  // biome-ignore lint/suspicious/noExplicitAny: as above
  off(event: string, listener: (...args: any[]) => void): unknown
  close(): Promise<void>
  destroy(): void
}

/** A Lua script and its SHA-1, for `EVALSHA`. */
export interface RedisScript {
  readonly text: string
  readonly sha: string
}

/** Prepares a script for {@link RedisConnection.eval}. */
export function redisScript(text: string): RedisScript {
  return { text, sha: createHash('sha1').update(text).digest('hex') }
}

/** The options every Redis-backed helper takes. */
export interface RedisConnectionOptions {
  url?: string | undefined
  client?: RedisCommandClient | undefined
  prefix?: string | undefined
  commandTimeout?: number | undefined
}

/**
 * Checks a key prefix: non-empty, well-formed Unicode, without braces (it becomes the Redis
 * Cluster hash tag `{prefix}`).
 */
export function checkPrefix(prefix: unknown): string {
  if (
    typeof prefix !== 'string' ||
    prefix === '' ||
    /[{}]/.test(prefix) ||
    !prefix.isWellFormed()
  ) {
    invalidOption('prefix', 'a non-empty string without braces, in well-formed Unicode', prefix)
  }
  return prefix
}

/**
 * A node-redis client with deadlines. Every command settles within `commandTimeout`, counted from
 * the moment it is sent: node-redis stops counting once a command is written, so a Redis that
 * takes the bytes and never answers (frozen, or a network that drops packets) would otherwise
 * hold the caller for good. A command is refused at once while the connection is not ready
 * (after the first connection, which is waited for up to `commandTimeout`), so no caller waits
 * in node-redis's queue for a reconnect.
 */
export class RedisConnection {
  readonly client: RedisCommandClient
  /** `{prefix}:`, the start of every key. */
  readonly keyPrefix: string
  /** `commandTimeout`, in ms. */
  readonly timeout: number
  /** The latest connection error node-redis reported, for the messages of later failures. */
  lastError: unknown
  readonly #ownsClient: boolean
  readonly #connected: Promise<void>
  /** Commands not answered yet: given up (if still unwritten) when the connection is lost. */
  readonly #sending = new Set<AbortController>()

  /**
   * @param options - `url` or `client`, `prefix`, `commandTimeout`, checked here.
   * @param defaults - the owner's defaults for `prefix` and `commandTimeout`.
   * @throws {@link SseError} `ERR_SSE_INVALID_OPTION` for a bad option, or neither `url` nor
   *   `client`.
   */
  constructor(
    options: RedisConnectionOptions,
    defaults: { readonly prefix: string; readonly commandTimeout: number },
  ) {
    const { url, client } = options
    this.keyPrefix = `{${checkPrefix(options.prefix ?? defaults.prefix)}}:`
    this.timeout = checkDelay('commandTimeout', options.commandTimeout ?? defaults.commandTimeout, {
      min: 1,
    })
    if (client !== undefined) {
      if (
        typeof client !== 'object' ||
        client === null ||
        typeof client.sendCommand !== 'function'
      ) {
        invalidOption('client', 'a node-redis client (createClient())', client)
      }
      this.client = client
      this.#ownsClient = false
    } else if (typeof url === 'string' && url !== '') {
      this.client = createClient({ url }) as unknown as RedisCommandClient
      this.#ownsClient = true
    } else {
      invalidOption('url', 'a Redis URL, or a client option', url)
    }
    // node-redis emits 'error' for every failed (re)connection; without a listener the process
    // would crash.
    this.client.on('error', this.#onError)
    this.#connected = this.client.isOpen
      ? Promise.resolve()
      : this.client.connect().then(() => undefined)
    // Failures surface through the commands; this promise must not be an unhandled rejection.
    this.#connected.catch(() => {})
  }

  /** Waits for the first connection, up to `commandTimeout`; never rejects. */
  async waitFirstConnection(): Promise<void> {
    if (this.client.isReady) return
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<void>((resolve) => {
      timer = setDeadline(resolve, this.timeout, undefined)
    })
    try {
      await Promise.race([this.#connected.catch(() => {}), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Runs a script (loaded again after a Redis restart emptied the script cache). */
  async eval(
    script: RedisScript,
    keys: readonly string[],
    args: readonly string[],
  ): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args]
    try {
      return await this.send(['EVALSHA', script.sha, ...tail])
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error
      return await this.send(['EVAL', script.text, ...tail])
    }
  }

  /** Sends one command; it settles within `commandTimeout`, and fails at once when offline. */
  async send(args: string[]): Promise<unknown> {
    if (!this.client.isReady) await this.waitFirstConnection()
    if (!this.client.isReady) throw this.lastError ?? new Error('not connected')
    const controller = new AbortController()
    this.#sending.add(controller)
    let timer: ReturnType<typeof setTimeout> | undefined
    const deadline = new Promise<never>((_, reject) => {
      // Judged after the replies already received: see util/deadline.ts.
      timer = setDeadline(
        () => {
          controller.abort()
          reject(new Error(`no answer from Redis in ${this.timeout} ms`))
        },
        this.timeout,
        undefined,
      )
    })
    try {
      return await Promise.race([
        this.client.sendCommand(args, { abortSignal: controller.signal }),
        deadline,
      ])
    } finally {
      clearTimeout(timer)
      this.#sending.delete(controller)
    }
  }

  /** Stops listening to the client, and closes it if it was made here. */
  async close(): Promise<void> {
    if (this.#ownsClient && this.client.isOpen) {
      try {
        await this.client.close()
      } catch {
        this.client.destroy()
      }
    }
    this.client.off('error', this.#onError)
  }

  // node-redis reports a lost connection ('error', no longer ready) before it flushes its
  // queues, then keeps the unwritten commands for the reconnect: give those up now rather than
  // at `commandTimeout` (the written ones node-redis rejects itself).
  readonly #onError = (error: unknown): void => {
    this.lastError = error
    if (this.client.isReady) return
    for (const controller of this.#sending) controller.abort()
  }
}
