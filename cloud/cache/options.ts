import type { Cluster, Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'

/** How the cache is built (`cacheDefaults` holds the defaults of all but the connections). */
export interface TieredCacheOptions {
  /** L1's bound on entries */
  l1MaxEntries: number
  /** L1's bound on the bytes of its values (their JSON length) */
  l1MaxBytes: number
  /** longest time an entry stays fresh in L1, ms (the seed's 5 minutes) */
  l1MaxTtlMs: number
  /** freshness of an entry written without a TTL of its own, ms */
  defaultTtlMs: number
  /** freshness of a cached "not found" written without a TTL of its own, ms */
  negativeTtlMs: number
  /** TTLs get +/- this fraction at random, so keys written together do not expire together */
  jitter: number
  /** how long past its expiry an entry may still be served when the source fails, ms */
  graceMs: number
  /** after a failed refresh, the stale value is served for this long before the source is tried again, ms */
  failSafeThrottleMs: number
  /** an L1 entry read this many times is refreshed in the background before it expires */
  hotHits: number
  /** a hot entry is refreshed once this fraction of its freshness has passed */
  eagerRefreshAt: number
  /** the L1 is halved when the V8 heap passes this fraction of its limit */
  memoryPressure: number
  /** L2 (Redis or Redis Cluster); null: L1 only */
  redis: Redis | Cluster | null
  /** a second connection for the invalidation bus (subscriber mode); null: no bus */
  subscriber: Redis | Cluster | null
  /** prefix of every L2 key and of the bus channel */
  keyPrefix: string
  /** consecutive Redis failures that open the circuit (L2 skipped) */
  circuitThreshold: number
  /** how long the circuit stays open before one call tries Redis again, ms */
  circuitOpenMs: number
  log: Logger
  registry: Registry
  /** told of every look-up by layer and result (the performance monitor's window) */
  onLookup?: (layer: 'l1' | 'l2', result: 'hit' | 'miss' | 'stale') => void
  now?: () => number
  random?: () => number
}

export const cacheDefaults = {
  l1MaxEntries: 100_000,
  l1MaxBytes: 32 * 1024 * 1024,
  l1MaxTtlMs: 300_000,
  defaultTtlMs: 60_000,
  negativeTtlMs: 30_000,
  jitter: 0.1,
  graceMs: 600_000,
  failSafeThrottleMs: 5_000,
  hotHits: 20,
  eagerRefreshAt: 0.8,
  memoryPressure: 0.8,
  keyPrefix: 'gc:',
  circuitThreshold: 3,
  circuitOpenMs: 2_000,
} as const
