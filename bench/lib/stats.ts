/** Small statistics for benchmark repetitions: medians and spread. */

/** The `q` quantile (0..1) of ascending `sorted` values, by nearest rank; NaN when empty. */
function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]!
}

/** Median of `values` (any order); NaN when empty. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** A repeated measurement: its median, extremes and every value. */
export interface Summary {
  median: number
  min: number
  max: number
  /** Half the min–max range relative to the median, in percent. */
  spreadPct: number
  values: number[]
}

function summary(values: readonly number[]): Summary {
  const m = median(values)
  const min = Math.min(...values)
  const max = Math.max(...values)
  return {
    median: m,
    min,
    max,
    spreadPct: m === 0 ? 0 : ((max - min) / 2 / Math.abs(m)) * 100,
    values: [...values],
  }
}

export const summarize = { percentile, median, summary }
