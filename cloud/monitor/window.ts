/**
 * Latency statistics over a sliding window, in bounded memory: one bucket per second in a ring
 * (the seed's sketch kept every sample in an array and re-filtered it on every push). Each bucket
 * holds a count, an error count, a sum and a fixed log-scale histogram, so percentiles of the window
 * come from merging at most `seconds` small histograms, whatever the traffic.
 */

/** Upper bounds of the histogram bins, ms: 0.05 ms to ~100 s, about 12 % apart. */
const BOUNDS: number[] = (() => {
  const b: number[] = []
  for (let v = 0.05; v < 120_000; v *= 1.12) b.push(v)
  return b
})()

function binOf(ms: number): number {
  // binary search: the first bound >= ms
  let lo = 0
  let hi = BOUNDS.length - 1
  if (ms > (BOUNDS[hi] as number)) return hi
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if ((BOUNDS[mid] as number) >= ms) hi = mid
    else lo = mid + 1
  }
  return lo
}

interface Bucket {
  second: number
  count: number
  errors: number
  sumMs: number
  maxMs: number
  bins: Uint32Array
}

export interface WindowStats {
  count: number
  errors: number
  /** per second over the window */
  rate: number
  errorRate: number
  avgMs: number
  p50Ms: number
  p95Ms: number
  p99Ms: number
  maxMs: number
}

export class LatencyWindow {
  private readonly ring: Bucket[]

  constructor(
    private readonly seconds = 300,
    private readonly now: () => number = Date.now,
  ) {
    this.ring = Array.from({ length: seconds }, () => ({
      second: -1,
      count: 0,
      errors: 0,
      sumMs: 0,
      maxMs: 0,
      bins: new Uint32Array(BOUNDS.length),
    }))
  }

  record(ms: number, error = false): void {
    const s = Math.floor(this.now() / 1000)
    const b = this.ring[s % this.seconds] as Bucket
    if (b.second !== s) {
      b.second = s
      b.count = 0
      b.errors = 0
      b.sumMs = 0
      b.maxMs = 0
      b.bins.fill(0)
    }
    b.count++
    if (error) b.errors++
    b.sumMs += ms
    if (ms > b.maxMs) b.maxMs = ms
    const i = binOf(ms)
    b.bins[i] = (b.bins[i] as number) + 1
  }

  stats(): WindowStats {
    const s = Math.floor(this.now() / 1000)
    const bins = new Uint32Array(BOUNDS.length)
    let count = 0
    let errors = 0
    let sum = 0
    let max = 0
    for (const b of this.ring) {
      if (b.second < 0 || s - b.second >= this.seconds) continue
      count += b.count
      errors += b.errors
      sum += b.sumMs
      if (b.maxMs > max) max = b.maxMs
      for (let i = 0; i < bins.length; i++) bins[i] = (bins[i] as number) + (b.bins[i] as number)
    }
    const q = (p: number) => {
      if (count === 0) return 0
      const rank = Math.ceil(p * count)
      let seen = 0
      for (let i = 0; i < bins.length; i++) {
        seen += bins[i] as number
        if (seen >= rank) return Math.min(BOUNDS[i] as number, max)
      }
      return max
    }
    return {
      count,
      errors,
      rate: count / this.seconds,
      errorRate: count ? errors / count : 0,
      avgMs: count ? sum / count : 0,
      p50Ms: q(0.5),
      p95Ms: q(0.95),
      p99Ms: q(0.99),
      maxMs: max,
    }
  }
}

/** Counts over a sliding window (per-second ring), for rates such as cache hits by layer. */
export class CountWindow {
  private readonly ring: Array<{ second: number; n: Map<string, number> }>

  constructor(
    private readonly seconds = 300,
    private readonly now: () => number = Date.now,
  ) {
    this.ring = Array.from({ length: seconds }, () => ({ second: -1, n: new Map() }))
  }

  add(key: string, by = 1): void {
    const s = Math.floor(this.now() / 1000)
    const b = this.ring[s % this.seconds] as { second: number; n: Map<string, number> }
    if (b.second !== s) {
      b.second = s
      b.n.clear()
    }
    b.n.set(key, (b.n.get(key) ?? 0) + by)
  }

  totals(): Map<string, number> {
    const s = Math.floor(this.now() / 1000)
    const out = new Map<string, number>()
    for (const b of this.ring) {
      if (b.second < 0 || s - b.second >= this.seconds) continue
      for (const [k, v] of b.n) out.set(k, (out.get(k) ?? 0) + v)
    }
    return out
  }
}
