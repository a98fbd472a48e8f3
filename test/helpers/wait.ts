/**
 * The suite's one way to wait for a condition: `waitFor(what, read, options)`.
 *
 * - `what` comes first and is required, so every wait says what it was waiting for.
 * - `read` returns the value to look at (a count, a flag, a list); it may be async. The wait
 *   ends when `until(value)` holds (by default: the value is truthy) and resolves with it.
 * - On the deadline it fails with `what`, the time waited and the last value seen, so a
 *   failure on a busy machine tells you how far things got.
 * - An error thrown by `read` fails the wait at once, with that error as its cause: a wait
 *   never turns an error into "not yet".
 */

/** How long and how often {@link waitFor} polls. */
export interface WaitOptions<T> {
  /** When the value is good enough; default: it is truthy. */
  until?: (value: T) => boolean
  /** Milliseconds before the wait fails; default 10 000 (half the test timeout). */
  timeout?: number
  /** Milliseconds between polls; default 5. */
  interval?: number
}

/** Polls `read` until `until` holds for its value; resolves with that value. */
export async function waitFor<T>(
  what: string,
  read: () => T | Promise<T>,
  { until = Boolean, timeout = 10_000, interval = 5 }: WaitOptions<T> = {},
): Promise<T> {
  const start = Date.now()
  for (;;) {
    let value: T
    try {
      value = await read()
    } catch (error) {
      throw new Error(`waitFor: reading "${what}" failed after ${Date.now() - start} ms`, {
        cause: error,
      })
    }
    if (until(value)) return value
    if (Date.now() - start > timeout) {
      throw new Error(
        `waitFor: "${what}" not met in ${timeout} ms; last value seen: ${show(value)}`,
      )
    }
    await new Promise((resolve) => setTimeout(resolve, interval))
  }
}

/**
 * Settles as `promise` does, or fails naming `what` after `ms` milliseconds: the deadline for a
 * wait on one event (a head, a process exit) rather than on a condition to poll.
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** A short, readable rendering of the last value seen. */
function show(value: unknown): string {
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
  }
  return text.length > 300 ? `${text.slice(0, 300)}… (${text.length} chars)` : text
}
