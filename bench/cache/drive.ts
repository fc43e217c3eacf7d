import { performance } from 'node:perf_hooks'
import { percentile } from '../support/stats.js'
import { tokenOf } from './workload.js'

/** One round of look-ups through one cache. */
export interface RunResult {
  opsPerS: number
  hitRate: number
  p50Ms: number
  p99Ms: number
}

/**
 * The look-ups of `seq` through `get`, `concurrency` at a time: the first quarter warms the cache
 * up, the rest is measured. `loads` counts the loader's calls (the misses of both tiers).
 */
export async function drive(
  seq: Uint32Array,
  concurrency: number,
  get: (token: string) => Promise<unknown>,
  loads: () => number,
): Promise<RunResult> {
  const lat = new Float64Array(seq.length)
  const warm = Math.floor(seq.length / 4)
  // warm-up: the first quarter fills L1 and L2; measured: the rest
  let next = 0
  const worker = async (measure: boolean, end: number) => {
    for (;;) {
      const k = next++
      if (k >= end) return
      const t0 = performance.now()
      await get(tokenOf(seq[k] as number))
      if (measure) lat[k] = performance.now() - t0
    }
  }
  await Promise.all(Array.from({ length: concurrency }, () => worker(false, warm)))
  const loads0 = loads()
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, () => worker(true, seq.length)))
  const seconds = (performance.now() - t0) / 1000
  const measured = seq.length - warm
  const timed = lat.subarray(warm)
  return {
    opsPerS: measured / seconds,
    hitRate: 1 - (loads() - loads0) / measured,
    p50Ms: percentile(timed, 50),
    p99Ms: percentile(timed, 99),
  }
}
