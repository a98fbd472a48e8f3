/** Helpers for stream tests: timed collection, raw reads, gates. */

import { connect, type Socket } from 'node:net'
import { expect } from 'vitest'
import {
  iterateEvents,
  iterateMessages,
  type SseEvent,
  type SseMessage,
} from '../../src/testing.ts'
import { waitFor } from './wait.ts'

/**
 * Collects every message a stream sends in the `ms` milliseconds after its opening frame
 * arrived, then disconnects. The window starts with the opening, not with the request, so a
 * slow connection on a busy machine does not eat into it.
 */
export async function collectFor(url: string, ms: number): Promise<SseMessage[]> {
  const out: SseMessage[] = []
  const controller = new AbortController()
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    // The deadline covers the connection too: it is the longest the whole read may take.
    for await (const message of iterateMessages(url, {
      signal: controller.signal,
      timeout: ms + 10_000,
    })) {
      out.push(message)
      timer ??= setTimeout(() => controller.abort(), ms)
    }
  } finally {
    clearTimeout(timer)
  }
  return out
}

/** A stream read in the background while a test acts; see {@link follow}. */
export interface Follower {
  /** Every event received so far. */
  readonly events: SseEvent[]
  /**
   * Waits until `predicate` holds for the events so far. Fails at once, with the stream's own
   * error as the cause, if the stream failed, or ended before the predicate held; on the
   * deadline the error names `what` and how many events had come.
   */
  until(what: string, predicate: (events: SseEvent[]) => boolean, timeout?: number): Promise<void>
  /** Resolves once the stream has ended by itself; rejects with its error if it failed. */
  ended(): Promise<void>
  /** Hangs up; rejects with the stream's error if it had failed before. */
  stop(): Promise<void>
}

/**
 * Reads `url` in the background until the stream ends or {@link Follower.stop} hangs up. Its
 * error is kept and reported by every later wait, never swallowed. `timeout` bounds the whole
 * read (default 30 s).
 */
export function follow(
  url: string,
  options: { lastEventId?: string; timeout?: number } = {},
): Follower {
  const events: SseEvent[] = []
  const controller = new AbortController()
  const state: { failure: unknown; failed: boolean; ended: boolean } = {
    failure: undefined,
    failed: false,
    ended: false,
  }
  const reading = (async () => {
    try {
      const stream = iterateEvents(url, {
        ...options,
        timeout: options.timeout ?? 30_000,
        signal: controller.signal,
      })
      for await (const event of stream) events.push(event)
    } catch (error) {
      state.failure = error
      state.failed = true
    } finally {
      state.ended = true
    }
  })()
  const settled = async () => {
    await reading
    if (state.failed) throw state.failure
  }
  return {
    events,
    async until(what, predicate, timeout) {
      const read = () => {
        if (state.failed) throw state.failure
        const met = predicate(events)
        if (!met && state.ended) {
          throw new Error(`the stream ended after ${events.length} events: ${show(events)}`)
        }
        return { met, received: events.length, last: events.at(-1) }
      }
      await waitFor(what, read, { until: (seen) => seen.met, ...(timeout ? { timeout } : {}) })
    },
    ended: settled,
    async stop() {
      controller.abort()
      await settled()
    },
  }
}

/** The last few events, for an error message. */
function show(events: SseEvent[]): string {
  return JSON.stringify(events.slice(-3).map(({ event, id, data }) => ({ event, id, data })))
}

/** A promise with its resolve function, to hold a source at a point the test controls. */
export function gate<T = void>() {
  let open!: (value: T) => void
  const promise = new Promise<T>((resolve) => {
    open = resolve
  })
  return { promise, open }
}

/** Resolves after `ms`, or rejects at once with the signal's reason when it aborts. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * Resolves when `signal` aborts (at once if it already has): for a source that idles until its
 * stream ends and then finishes normally. Unlike `sleepUnlessAborted(60_000, signal)` with a
 * `.catch(() => {})`, it has no timer and no catch-all that could hide another error.
 */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
}

/**
 * A source that sends `first`, then, when its stream is told to shut down, waits for `farewell`
 * before it ends (sending `last`, if given). With a long `shutdownGrace`, its stream keeps
 * `closeAll` running until the test lets it go.
 */
export function farewellAfter(farewell: Promise<unknown>, last?: string) {
  return async function* ({ signal }: { signal: AbortSignal }) {
    yield 'first'
    await untilAborted(signal)
    await farewell
    if (last !== undefined) yield last
  }
}

/**
 * Opens a raw TCP connection, sends a GET, and never reads: a client that stopped reading.
 * Returns the socket (paused) so the test can destroy it.
 */
export function stalledClient(port: number, path = '/'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`)
      socket.pause()
      resolve(socket)
    })
    socket.setNoDelay(true)
    // After it connected, an error is the server dropping the stalled client: what tests of it
    // expect, and assert on the server side.
    socket.on('error', () => {})
    socket.once('error', reject)
  })
}

/** Counts the active timers of this process (`Timeout` resources). */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length
}

/** The frame every stream opens with, sent with the head (`OPENING` in the pump), with `\r\n`. */
export const OPENING_FRAME = ': ok\r\n\r\n'

/** The opening frame as `readMessages` reports it. */
export const OPENING_MESSAGE: SseMessage = { type: 'comment', comment: 'ok' }

/** What a stream sent after its opening frame, checking that the opening came first. */
export function afterOpening(messages: SseMessage[]): SseMessage[] {
  expect(messages[0]).toEqual(OPENING_MESSAGE)
  return messages.slice(1)
}
