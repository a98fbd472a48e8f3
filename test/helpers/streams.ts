/** Helpers for stream tests: timed collection, raw reads, gates. */

import { connect, type Socket } from 'node:net'
import { expect } from 'vitest'
import { iterateMessages, type SseMessage } from '../../src/testing.ts'

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
