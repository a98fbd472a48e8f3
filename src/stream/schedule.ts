/**
 * "Later in this turn of the event loop": after the current burst of microtasks, before any
 * timer. Used to batch what one burst produces (the pump's writes, a broadcast's wake-ups).
 *
 * @internal
 * @module
 */

/**
 * Runs `callback(arg)` once the current burst is over: `setImmediate` where the runtime has it
 * (Node, Bun), else a zero-delay timer (Deno, browsers, Workers).
 */
export const scheduleAfterBurst: <T>(callback: (arg: T) => void, arg: T) => unknown =
  typeof globalThis.setImmediate === 'function'
    ? globalThis.setImmediate
    : (callback, arg) => setTimeout(callback, 0, arg)
