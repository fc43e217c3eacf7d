import { LRUCache } from 'lru-cache'

/** How many alerts of one kind one gate may raise: a burst, then a steady rate. */
export interface AlertRate {
  /** alerts at once (the bucket's size) */
  burst: number
  /** alerts per hour after the burst (the bucket's refill) */
  perHour: number
}

export const alertRateDefaults: AlertRate = { burst: 10, perHour: 30 }

interface Bucket {
  tokens: number
  /** when the tokens were last counted, ms */
  at: number
}

/**
 * A token bucket per gate and alert kind: what a gate sends (its events, its metrics, its statuses)
 * raises alerts, and a gate that floods, broken or forged, must not flood the alert sinks, the
 * webhook and alert_events with it. Per kind, so that a flood of one kind (forged events) cannot
 * silence another (the gate going offline). The buckets of the gates heard least recently are
 * forgotten past `maxBuckets` (a forgotten bucket starts full again).
 */
export class AlertLimiter {
  private readonly buckets: LRUCache<string, Bucket>

  constructor(
    private readonly rate: AlertRate,
    private readonly now: () => number = Date.now,
    maxBuckets = 100_000,
  ) {
    this.buckets = new LRUCache({ max: maxBuckets })
  }

  /** Whether an alert of `kind` of `gateId` may go out now; false: over the rate, to be suppressed. */
  take(gateId: string, kind: string): boolean {
    const key = `${kind}\u0000${gateId}`
    const now = this.now()
    const bucket = this.buckets.get(key) ?? { tokens: this.rate.burst, at: now }
    bucket.tokens = Math.min(
      this.rate.burst,
      bucket.tokens + ((now - bucket.at) * this.rate.perHour) / 3_600_000,
    )
    bucket.at = now
    const ok = bucket.tokens >= 1
    if (ok) bucket.tokens -= 1
    this.buckets.set(key, bucket)
    return ok
  }
}
