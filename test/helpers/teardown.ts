/**
 * Teardown that always finishes: every step runs, last registered first, even after one of
 * them fails (an assertion among them, a close that rejects), and the first failure is thrown
 * at the end. A step skipped by an earlier failure would leave a redis-server or a server
 * running past the test process.
 */

/** A test file's teardown steps; `await teardown.run()` in `afterEach`. */
export class Teardown {
  readonly #steps: Array<() => Promise<unknown>> = []

  /** Registers a step, run before those registered earlier. */
  push(step: () => Promise<unknown>): void {
    this.#steps.push(step)
  }

  /** Runs and forgets every step; throws the first failure once all have run. */
  async run(): Promise<void> {
    const failures: unknown[] = []
    for (const step of this.#steps.splice(0).reverse()) {
      try {
        await step()
      } catch (error) {
        failures.push(error)
      }
    }
    if (failures.length > 0) throw failures[0]
  }
}
