/**
 * A FIFO queue with O(1) push and shift that only holds memory for what it contains.
 *
 * @internal
 * @module
 */

/** @internal */
export class Deque<T> {
  #items: (T | undefined)[] = []
  #head = 0

  /** How many items are queued. */
  get size(): number {
    return this.#items.length - this.#head
  }

  push(item: T): void {
    this.#items.push(item)
  }

  /** The item at `index` (0 is the oldest). */
  at(index: number): T {
    return this.#items[this.#head + index] as T
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined
    const item = this.#items[this.#head]
    this.#items[this.#head] = undefined
    this.#head++
    if (this.#head === this.#items.length) {
      this.#items = []
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      // Compact once most of the array is spent, so a long-lived queue does not keep it all.
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return item
  }

  clear(): void {
    this.#items = []
    this.#head = 0
  }
}
