/**
 * The keep-alive scheduler: one timer and a min-heap of deadlines for every stream's pings.
 * Streams are tested end to end in options.test.ts (`ping`); here the heap itself, with many
 * entries, removals and re-scheduling, against the order a sorted list gives.
 */

import { describe, expect, test } from 'vitest'
import { clock, type KeepAlive, keepAlive } from '../../src/stream/keepalive.ts'
import { waitFor } from '../helpers/wait.ts'

class Entry implements KeepAlive {
  keepAliveSlot = -1
  readonly due: number[] = []
  constructor(
    readonly name: number,
    readonly deadline: number,
    readonly onDue: (entry: Entry, now: number) => void,
  ) {}
  keepAliveDue(now: number): void {
    this.due.push(now)
    this.onDue(this, now)
  }
}

/** A deterministic pseudo-random sequence (the test must fail the same way every run). */
function random(seed: number): () => number {
  let state = seed
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31
    return state / 2 ** 31
  }
}

describe('keep-alive scheduler', () => {
  test('calls each entry once its deadline has passed, earliest first; removed entries never', async () => {
    const next = random(7)
    const order: Entry[] = []
    const start = clock()
    const entries = Array.from(
      { length: 500 },
      (_, i) => new Entry(i, start + 5 + Math.floor(next() * 60), (entry) => order.push(entry)),
    )
    for (const entry of entries) keepAlive.add(entry, entry.deadline)
    expect(keepAlive.size).toBe(500)
    const removed = entries.filter((entry) => entry.name % 3 === 0)
    for (const entry of removed) keepAlive.remove(entry)
    // Removing twice, or an entry never added, changes nothing.
    keepAlive.remove(removed[0]!)
    keepAlive.remove(new Entry(-1, 0, () => {}))
    expect(keepAlive.size).toBe(500 - removed.length)

    await waitFor('every kept entry to be called', () => keepAlive.size, {
      until: (size) => size === 0,
    })
    const kept = entries.filter((entry) => entry.name % 3 !== 0)
    expect(order).toHaveLength(kept.length)
    expect(new Set(order)).toEqual(new Set(kept))
    for (const entry of removed) expect(entry.due).toEqual([])
    for (const entry of kept) {
      expect(entry.due).toHaveLength(1)
      expect(entry.due[0]).toBeGreaterThanOrEqual(entry.deadline)
      expect(entry.keepAliveSlot).toBe(-1)
    }
    // Earliest first: deadlines never go down along the calling order.
    const deadlines = order.map((entry) => entry.deadline)
    expect(deadlines).toEqual([...deadlines].sort((a, b) => a - b))
  })

  test('an entry may schedule itself again from its callback, and be removed while waiting', async () => {
    const start = clock()
    const again = new Entry(1, start + 5, (entry, now) => {
      if (entry.due.length < 3) keepAlive.add(entry, now + 5)
    })
    const dropped = new Entry(2, start + 5, (_entry, now) => {
      keepAlive.add(dropped, now + 10_000)
    })
    keepAlive.add(again, again.deadline)
    keepAlive.add(dropped, dropped.deadline)
    await waitFor(
      '3 calls of the rescheduled entry, 1 of the dropped one',
      () => [again.due.length, dropped.due.length],
      { until: ([a, d]) => a === 3 && d === 1 },
    )
    // `dropped` waits 10 s for its next call; removing it empties the heap and the timer.
    expect(keepAlive.size).toBe(1)
    keepAlive.remove(dropped)
    expect(keepAlive.size).toBe(0)
    expect(again.due[1]! - again.due[0]!).toBeGreaterThanOrEqual(5)
  })

  test('a later, earlier deadline re-arms the timer for it', async () => {
    const start = clock()
    const late = new Entry(1, start + 10_000, () => {})
    const early = new Entry(2, start + 10, () => {})
    keepAlive.add(late, late.deadline)
    keepAlive.add(early, early.deadline)
    await waitFor('the early entry to be called', () => early.due.length)
    expect(late.due).toEqual([])
    keepAlive.remove(late)
    expect(keepAlive.size).toBe(0)
  })

  // Issue #17 item 6: `ping: 1e-13` made `now + ping === now`; the stream was due again within
  // the same pass, which never ended and froze the process. The options refuse such intervals;
  // the scheduler also keeps each pass bounded whatever deadline it is given.
  test('an entry that reschedules itself for now (or NaN) waits for the next pass', async () => {
    const calls: number[] = []
    const stuck = new Entry(1, clock(), (entry, now) => {
      calls.push(now)
      // Bounded, so the test ends even where the pass would not.
      if (calls.length < 1000) keepAlive.add(entry, calls.length % 2 ? now + 1e-13 : Number.NaN)
    })
    keepAlive.add(stuck, stuck.deadline)
    await waitFor('five calls', () => calls.length, { until: (n) => n >= 5 })
    keepAlive.remove(stuck)
    // One call per pass, each pass at least a millisecond after the one before.
    for (let i = 1; i < calls.length; i++) expect(calls[i]!).toBeGreaterThan(calls[i - 1]!)
    expect(calls.length).toBeLessThan(1000)
  })
})
