/**
 * Deadlines that a held event loop cannot fool.
 *
 * When the event loop has been held (a long garbage collection, a burst of synchronous work on
 * a loaded machine), it comes back to an overdue timer *and* to the I/O that arrived meanwhile,
 * and runs the timers first. A deadline judged in its timer callback would fail an operation
 * whose answer is already waiting in the socket: a Redis reply, a client's drained buffer. So a
 * deadline here is judged one step later — after the I/O that is ready has been handled
 * (`setImmediate` runs after the poll phase in Node and Bun; elsewhere a zero-delay timer).
 * The callback must still check that what it guards is still waiting: clearing the timer does
 * not cancel a judgement already scheduled.
 *
 * `test/reliability/blocked-loop.test.ts` holds the loop across an answer and past the
 * deadline, and fails without this.
 *
 * @internal
 * @module
 */

const afterPendingIo: <T>(callback: (arg: T) => void, arg: T) => unknown =
  typeof globalThis.setImmediate === 'function'
    ? globalThis.setImmediate
    : (callback, arg) => setTimeout(callback, 0, arg)

/**
 * `setTimeout(callback, ms, arg)`, except that `callback` runs after the I/O already received
 * when the timer fires. Returns the timer (for `clearTimeout`, `unref`).
 */
export function setDeadline<T>(
  callback: (arg: T) => void,
  ms: number,
  arg: T,
): ReturnType<typeof setTimeout> {
  return setTimeout(afterPendingIo, ms, callback, arg)
}
