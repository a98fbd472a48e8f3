/**
 * One timer for every stream's keep-alive: a min-heap of deadlines (except on Cloudflare
 * Workers, where a timer belongs to one request: there, a timer per stream; see `TimerPerStream`).
 *
 * A timer per stream costs a `Timeout` object and a slot in the runtime's timer lists (~170
 * bytes, measured with heap snapshots of 10 000 idle streams), for an event that, on a busy
 * stream, never fires. Here a stream costs one slot in two arrays and its index; deadlines are
 * kept unboxed in a float array. Removing a stream takes it out of the heap at once, so an
 * ended stream is never retained until its deadline.
 *
 * @internal
 * @module
 */

import { unref } from '../util/delay.ts'

/** A stream with a keep-alive deadline. */
export interface KeepAlive {
  /** Where it sits in the heap; `-1` when not scheduled. Maintained by the scheduler. */
  keepAliveSlot: number
  /** Its deadline has come (`now` is the scheduler's clock). It may schedule itself again. */
  keepAliveDue(now: number): void
}

/** Milliseconds on a monotonic clock, whole (a small integer, stored without a box). */
export const clock = (): number => Math.floor(performance.now())

class KeepAliveScheduler {
  readonly #entries: KeepAlive[] = []
  readonly #deadlines: number[] = []
  #timer: ReturnType<typeof setTimeout> | undefined
  /** The deadline the timer is armed for; `Infinity` when it is not armed. */
  #armedFor = Number.POSITIVE_INFINITY
  #firing = false
  /** The clock reading of the pass being fired; `-Infinity` between passes. */
  #passAt = Number.NEGATIVE_INFINITY

  /** How many streams are scheduled. */
  get size(): number {
    return this.#entries.length
  }

  /** Schedules `entry` (not scheduled yet) for `deadline` on {@link clock}. */
  add(entry: KeepAlive, deadline: number): void {
    // A deadline not later than the pass being fired (an interval that is 0, a fraction too
    // small to move `now`, NaN) would be due again at once, and the pass would never end: the
    // process froze with `ping: 1e-13`. The options refuse such intervals; this keeps the
    // scheduler's own promise (a pass is bounded) whatever it is given.
    if (!(deadline > this.#passAt)) deadline = this.#passAt + 1
    this.#deadlines.push(deadline)
    this.#up(this.#entries.push(entry) - 1)
    this.#arm()
  }

  /** Unschedules `entry`; nothing happens if it is not scheduled. */
  remove(entry: KeepAlive): void {
    const slot = entry.keepAliveSlot
    if (slot < 0) return
    entry.keepAliveSlot = -1
    const entries = this.#entries
    const deadlines = this.#deadlines
    const last = entries.length - 1
    const lastEntry = entries.pop()!
    const lastDeadline = deadlines.pop()!
    if (slot !== last) {
      this.#put(slot, lastEntry, lastDeadline)
      this.#down(this.#up(slot))
    }
    // The timer stays armed for an earlier deadline, if any: firing early only re-arms.
    if (entries.length === 0) this.#disarm()
  }

  #fire(): void {
    this.#timer = undefined
    this.#armedFor = Number.POSITIVE_INFINITY
    const now = clock()
    // Entries scheduled during this pass (re-armed streams) are at least 1 ms later (see add):
    // bounded.
    const entries = this.#entries
    const deadlines = this.#deadlines
    this.#firing = true
    this.#passAt = now
    try {
      while (entries.length > 0 && deadlines[0]! <= now) {
        const entry = entries[0]!
        this.remove(entry)
        entry.keepAliveDue(now)
      }
    } finally {
      this.#firing = false
      this.#passAt = Number.NEGATIVE_INFINITY
      this.#arm()
    }
  }

  #arm(): void {
    if (this.#firing || this.#entries.length === 0) return
    const next = this.#deadlines[0]!
    if (next >= this.#armedFor) return
    this.#disarm()
    this.#armedFor = next
    this.#timer = setTimeout(KeepAliveScheduler.#onTimer, Math.max(0, next - clock()), this)
    unref(this.#timer)
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#armedFor = Number.POSITIVE_INFINITY
  }

  static #onTimer(scheduler: KeepAliveScheduler): void {
    scheduler.#fire()
  }

  /** Moves the entry at `slot` towards the root while it is earlier; returns where it stops. */
  #up(slot: number): number {
    const deadlines = this.#deadlines
    const entry = this.#entries[slot]!
    const deadline = deadlines[slot]!
    while (slot > 0) {
      const parent = (slot - 1) >> 1
      if (deadlines[parent]! <= deadline) break
      this.#put(slot, this.#entries[parent]!, deadlines[parent]!)
      slot = parent
    }
    this.#put(slot, entry, deadline)
    return slot
  }

  /** Moves the entry at `slot` towards the leaves while it is later. */
  #down(slot: number): void {
    const deadlines = this.#deadlines
    const size = deadlines.length
    const entry = this.#entries[slot]!
    const deadline = deadlines[slot]!
    for (;;) {
      let child = 2 * slot + 1
      if (child >= size) break
      if (child + 1 < size && deadlines[child + 1]! < deadlines[child]!) child++
      if (deadlines[child]! >= deadline) break
      this.#put(slot, this.#entries[child]!, deadlines[child]!)
      slot = child
    }
    this.#put(slot, entry, deadline)
  }

  #put(slot: number, entry: KeepAlive, deadline: number): void {
    this.#entries[slot] = entry
    this.#deadlines[slot] = deadline
    entry.keepAliveSlot = slot
  }
}

/**
 * Cloudflare Workers: a timer per stream, set from the stream's own request.
 *
 * A Worker's timer belongs to the request that set it, and a request with nothing pending is
 * cancelled as hung. With one shared timer, measured with workerd 2026-11-23: a second stream
 * opened while the first stream's timer was armed got no timer of its own, was cancelled as hung
 * right after its last event (its source's `finally` never ran), and its pings ran in the first
 * request's timer, which workerd refuses ("a promise was resolved … from a different request
 * context"). Here each stream's keep-alive runs in its own request, as a Worker's code must.
 */
class TimerPerStream {
  readonly #timers = new Map<KeepAlive, ReturnType<typeof setTimeout>>()

  /** How many streams are scheduled. */
  get size(): number {
    return this.#timers.size
  }

  /** Schedules `entry` (not scheduled yet) for `deadline` on {@link clock}. */
  add(entry: KeepAlive, deadline: number): void {
    entry.keepAliveSlot = 0
    this.#timers.set(
      entry,
      setTimeout(TimerPerStream.#onTimer, Math.max(1, deadline - clock()), this, entry),
    )
  }

  /** Unschedules `entry`; nothing happens if it is not scheduled. */
  remove(entry: KeepAlive): void {
    const timer = this.#timers.get(entry)
    if (timer === undefined) return
    clearTimeout(timer)
    this.#timers.delete(entry)
    entry.keepAliveSlot = -1
  }

  static #onTimer(scheduler: TimerPerStream, entry: KeepAlive): void {
    scheduler.#timers.delete(entry)
    entry.keepAliveSlot = -1
    entry.keepAliveDue(clock())
  }
}

/** Whether this is a Cloudflare Worker (workerd): its documented `navigator.userAgent`. */
const onWorkers =
  (globalThis as { navigator?: { userAgent?: unknown } }).navigator?.userAgent ===
  'Cloudflare-Workers'

/**
 * The process's keep-alive scheduler, shared by every stream: one timer for all of them, except on
 * Cloudflare Workers, where each stream needs its own (see {@link TimerPerStream}).
 */
export const keepAlive: KeepAliveScheduler | TimerPerStream = onWorkers
  ? new TimerPerStream()
  : new KeepAliveScheduler()
