/**
 * Keeps the call order of validated sends when a schema is async.
 *
 * @internal
 * @module
 */

import { isPromise } from './contract.ts'

function ignore(): void {}

/**
 * Runs each step in the order it was asked for, after its value is ready. A value that is
 * ready at once, with nothing waiting before it, runs its step at once: a bound channel or
 * broadcaster with synchronous schemas (zod, valibot and arktype without async refinements)
 * pays nothing here. Behind an async schema, later sends wait their turn, so two `send`s
 * made without `await` arrive in the order they were made.
 */
export class InOrder {
  /** Settles once the last queued step has been called (never rejects). */
  #tail: Promise<void> | undefined

  /**
   * Calls `step(value)` after every step asked for before it; a rejected `value` skips its
   * step (the caller gets the rejection) and lets the next one run.
   */
  run<T, R>(value: T | Promise<T>, step: (value: T) => R): R | Promise<Awaited<R>> {
    if (this.#tail === undefined && !isPromise(value)) return step(value)
    const previous = this.#tail ?? Promise.resolve()
    // Boxed, so the next step waits for this step's call, not for what it returns (a send
    // that waits for room would hold back everything behind it for no reason).
    const called = previous.then(() => value).then((ready) => ({ result: step(ready) }))
    const tail = called.then(ignore, ignore)
    this.#tail = tail
    tail.then(() => {
      if (this.#tail === tail) this.#tail = undefined
    })
    return called.then((box) => box.result) as Promise<Awaited<R>>
  }
}
