/**
 * When events published on this process were published, until the fan-out delivers them: the
 * start of the broadcast delivery latency (`docs/observability.md`). Filled only while someone
 * subscribes to the `oven-sse:stream:event` channel, so a broadcaster nobody observes keeps
 * nothing here.
 *
 * A message is matched by its payload: the broker hands back the same text (the same string
 * with the in-memory broker, an equal one from Redis). Equal payloads published close together
 * are matched in publish order, which is delivery order on one process.
 *
 * @internal
 * @module
 */

// Publishes to a topic that another process serves, or that lost its last subscriber on the
// way, never come back here: past this many, the oldest are forgotten.
const MAX_PENDING = 10_000

/** Publish times waiting for their delivery; see the module comment. @internal */
export class PendingPublishes {
  readonly #times = new Map<string, number[]>()
  #count = 0

  /** Notes that `payload` was published at `time`. */
  add(payload: string, time: number): void {
    if (this.#count >= MAX_PENDING) {
      // Oldest first: Map iteration follows insertion order.
      const [oldest, times] = this.#times.entries().next().value as [string, number[]]
      times.shift()
      if (times.length === 0) this.#times.delete(oldest)
      this.#count--
    }
    const times = this.#times.get(payload)
    if (times) times.push(time)
    else this.#times.set(payload, [time])
    this.#count++
  }

  /** The publish time of the oldest pending publish of `payload`, which it forgets. */
  take(payload: string): number | undefined {
    if (this.#count === 0) return undefined
    const times = this.#times.get(payload)
    if (!times) return undefined
    const time = times.shift()
    if (times.length === 0) this.#times.delete(payload)
    this.#count--
    return time
  }

  /** Forgets the publish of `payload` at `time` (it failed, or was never delivered here). */
  forget(payload: string, time: number): void {
    const times = this.#times.get(payload)
    const at = times?.indexOf(time) ?? -1
    if (!times || at < 0) return
    times.splice(at, 1)
    if (times.length === 0) this.#times.delete(payload)
    this.#count--
  }
}
