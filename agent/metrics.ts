import { denyReasonSchema } from '../shared/checkin.js'
import type { DenyReason } from './pipeline/types.js'

/**
 * Events per second over a sliding window, from per-second buckets in a ring (bounded memory).
 * Time comes from the caller (monotonic ms) so virtual time works.
 */
export class RateMeter {
  private readonly buckets: Float64Array
  private readonly stamps: Float64Array
  constructor(private readonly windowS = 10) {
    this.buckets = new Float64Array(windowS)
    this.stamps = new Float64Array(windowS).fill(-1)
  }
  /** count `n` events at monotonic ms `now` */
  mark(now: number, count = 1): void {
    const sec = Math.floor(now / 1000)
    const i = sec % this.windowS
    if (this.stamps[i] !== sec) {
      this.stamps[i] = sec
      this.buckets[i] = 0
    }
    this.buckets[i]! += count
  }
  /** events/s over the last full window ending at `now` (the current second excluded) */
  rate(now: number): number {
    const sec = Math.floor(now / 1000)
    let sum = 0
    for (let k = 1; k <= this.windowS; k++) {
      const second = sec - k
      const i = ((second % this.windowS) + this.windowS) % this.windowS
      if (this.stamps[i] === second) sum += this.buckets[i]!
    }
    return sum / this.windowS
  }
}

/** Counters of the advert pipeline; plain numbers, read by status and the MQTT reporter. */
export interface PipelineCounters {
  adverts: number
  sightings: number
  arrivals: number
  suppressed: number
  admit: number
  deny: Record<DenyReason, number>
  /** decisions whose commit failed (withheld: the gate fails closed) */
  withheld: number
}

/** Every counter of the pipeline at zero. */
export function newPipelineCounters(): PipelineCounters {
  return {
    adverts: 0,
    sightings: 0,
    arrivals: 0,
    suppressed: 0,
    admit: 0,
    deny: Object.fromEntries(denyReasonSchema.options.map((r) => [r, 0])) as Record<DenyReason, number>,
    withheld: 0,
  }
}
