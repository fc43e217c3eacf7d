/**
 * The order statistics the benchmarks report. Plain code, no imports: the agent benchmark's phases
 * load it into the very process whose memory they measure. The three differ on purpose where the
 * count is even, and each benchmark's published figures were made with the one it uses.
 */

/**
 * The p-th percentile of `xs` by rank: the value at ⌊p/100·n⌋ of the sorted list (the largest for
 * p = 100; so p = 50 is the upper of the two middle values); NaN for no values.
 */
export function percentile(xs: ArrayLike<number>, p: number): number {
  if (xs.length === 0) return Number.NaN
  const s = Array.from(xs).sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number
}

/** The median: the middle value, or the mean of the two middle ones; NaN for no values. */
export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

/** The lower median: the middle value, or the lower of the two middle ones; NaN for no values. */
export function lowerMedian(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? (s[Math.floor((s.length - 1) / 2)] as number) : Number.NaN
}
