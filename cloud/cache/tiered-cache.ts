// Above 300 lines on purpose: the read path (L1, L2, then the loader, one load per key, with
// fail-safe and the refresh of hot keys) and the writes and invalidations work on the same entries,
// tag snapshots and loads in flight; split apart, each half would reach into the other's state. L1,
// L2, the tags and the bus are modules of their own.
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import type { CloudConfig } from '../config.js'
import type { PerfMonitor } from '../monitor/perf.js'
import { type BusMessage, InvalidationBus } from './bus.js'
import type { CircuitState } from './circuit.js'
import { type Entry, type EntryOptions, parseEntry } from './entry.js'
import { L1 } from './l1.js'
import { type CacheMetrics, cacheMetrics } from './metrics.js'
import { cacheDefaults, type TieredCacheOptions } from './options.js'
import type { RedisPair } from './redis.js'
import { RedisTier } from './redis-tier.js'
import { TagVersions } from './tag-versions.js'

// the cache's API, where its users have always found it
export type { EntryOptions } from './entry.js'
export { cacheDefaults, type TieredCacheOptions } from './options.js'

/**
 * The node's cache from its configuration: the L1 bounds of CACHE_L1_MAX_*, Redis when there is
 * one (L1 alone otherwise), every look-up told to the performance monitor.
 */
export function createCache(
  config: CloudConfig,
  deps: { redis: RedisPair | null; log: Logger; registry: Registry; perf: PerfMonitor },
): TieredCache {
  return new TieredCache({
    ...cacheDefaults,
    l1MaxEntries: config.cache.l1MaxEntries,
    l1MaxBytes: config.cache.l1MaxBytes,
    redis: deps.redis?.client ?? null,
    subscriber: deps.redis?.subscriber ?? null,
    log: deps.log,
    registry: deps.registry,
    onLookup: (layer, result) => deps.perf.recordCache(layer, result),
  })
}

/**
 * A two-tier cache: L1 in process (lru-cache, bounded by entries and bytes), L2 in Redis
 * (standalone or Cluster), the loader behind both. What it does for the callers:
 * - one load per key per node at a time (stampede protection), TTL jitter, negative caching;
 * - fail-safe: when the loader or Redis fails, the last good value is served for a grace period;
 *   a failing Redis opens a circuit (L2 skipped) and is retried by itself (redis-tier.ts);
 * - invalidation by key, by tag (versioned tags: nothing is scanned, tag-versions.ts) and by prefix
 *   (SCAN + UNLINK on every master, never KEYS), told to every node over a pub/sub bus so each
 *   drops its L1 copy (bus.ts);
 * - hot keys are refreshed in the background before they expire; L1 halves under memory pressure;
 * - per-layer hits, misses and latency as Prometheus metrics.
 */
export class TieredCache {
  readonly nodeId = randomUUID()
  private readonly l1: L1
  private readonly inflight = new Map<string, Promise<unknown>>()
  private readonly tier: RedisTier
  private readonly tags: TagVersions
  private readonly bus: InvalidationBus
  private readonly options: TieredCacheOptions
  private readonly now: () => number
  private readonly random: () => number
  private pressureTimer: NodeJS.Timeout | null = null
  private readonly metrics: CacheMetrics

  constructor(options: TieredCacheOptions) {
    this.options = options
    this.now = options.now ?? Date.now
    this.random = options.random ?? Math.random
    this.l1 = new L1({
      maxEntries: options.l1MaxEntries,
      maxBytes: options.l1MaxBytes,
      maxTtlMs: options.l1MaxTtlMs,
      graceMs: options.graceMs,
      memoryPressure: options.memoryPressure,
      log: options.log,
      now: this.now,
    })
    this.metrics = cacheMetrics(options.registry, this.l1)
    this.tier = new RedisTier(options.redis, {
      keyPrefix: options.keyPrefix,
      circuitThreshold: options.circuitThreshold,
      circuitOpenMs: options.circuitOpenMs,
      log: options.log,
      now: this.now,
      circuitOpen: this.metrics.circuit,
    })
    this.tags = new TagVersions(this.tier)
    this.bus = new InvalidationBus({
      nodeId: this.nodeId,
      channel: `${options.keyPrefix}bus`,
      subscriber: options.subscriber,
      tier: this.tier,
      log: options.log,
      onMessage: (msg) => this.invalidatedElsewhere(msg),
      // messages missed while the bus was down may have invalidated anything: start L1 afresh
      onReconnect: () => {
        this.l1.clear()
        this.tags.clear()
      },
    })
  }

  /** Start the bus and the memory-pressure watch. */
  async start(): Promise<void> {
    if (!this.options.redis) this.options.log.warn('no REDIS_URL: the cache runs on L1 (in process) alone')
    await this.bus.start()
    this.pressureTimer = setInterval(() => this.checkMemory(), 5_000)
    this.pressureTimer.unref()
  }

  async stop(): Promise<void> {
    if (this.pressureTimer) clearInterval(this.pressureTimer)
    this.pressureTimer = null
  }

  get circuitState(): CircuitState {
    return this.tier.circuitState
  }

  /** L1 entries (for status). */
  get l1Size(): number {
    return this.l1.size
  }

  /**
   * The value for `key`: from L1, else L2, else `loader` (once per key per node at a time). A loader
   * answering null or undefined means "does not exist", cached for `negativeTtlMs`. When the loader
   * throws and a stale value is within its grace period, the stale value is served.
   */
  async getOrLoad<T>(
    key: string,
    loader: () => Promise<T | null | undefined>,
    opts: EntryOptions = {},
  ): Promise<T | null> {
    const t0 = performance.now()
    const got = this.l1.get(key)
    // the tag check is synchronous when this node knows the tags' versions (the usual case)
    const known = got ? this.tags.knownCurrent(got) : false
    const fromL1 =
      got && (known === true || (known === undefined && (await this.tags.current(got)))) ? got : undefined
    const now = this.now()
    if (fromL1) {
      if (fromL1.exp > now) {
        this.count('l1', 'hit')
        this.metrics.l1Get((performance.now() - t0) / 1000)
        this.maybeRefreshHot(key, fromL1, loader, opts)
        return fromL1.v as T | null
      }
      this.count('l1', 'stale')
    } else {
      this.count('l1', 'miss')
    }
    const running = this.inflight.get(key)
    if (running) return running as Promise<T | null>
    const loading = this.fromL2OrLoad(key, loader, opts, fromL1).finally(() => this.inflight.delete(key))
    this.inflight.set(key, loading)
    return loading
  }

  /** Write a value to both layers (and so drop other nodes' L1 copies of the key). */
  async set(key: string, value: unknown, opts: EntryOptions = {}): Promise<void> {
    const entry = await this.entry(value, opts)
    this.l1.set(key, entry)
    await this.l2Set(key, entry)
    await this.bus.publish({ op: 'del', keys: [key] })
  }

  /** Drop keys from both layers, on every node. */
  async delete(...keys: string[]): Promise<void> {
    for (const k of keys) this.l1.delete(k)
    this.metrics.invalidations.inc({ kind: 'key' }, keys.length)
    await this.tier.unlink(keys)
    await this.bus.publish({ op: 'del', keys })
  }

  /**
   * Invalidate every entry written with one of `tags`, on every node: the tag's version is bumped
   * (INCR in Redis, one key per tag), nothing is scanned; entries of an older version are misses.
   */
  async invalidateTags(...tags: string[]): Promise<void> {
    const bumped = await this.tags.bump(tags)
    this.metrics.invalidations.inc({ kind: 'tag' }, tags.length)
    await this.bus.publish({ op: 'tag', tags: bumped })
  }

  /** Drop every key starting with `prefix`: SCAN + UNLINK on every Redis master, and every node's L1. */
  async deleteByPrefix(prefix: string): Promise<number> {
    let dropped = this.l1.dropPrefix(prefix)
    // through the circuit like every L2 call: a failing Redis skips this part
    dropped += (await this.tier.unlinkPrefix(prefix)) ?? 0
    this.metrics.invalidations.inc({ kind: 'prefix' })
    await this.bus.publish({ op: 'prefix', prefix })
    return dropped
  }

  /**
   * Warm-up: load keys ahead of the first request into this node's L1 (each node warms its own; L2
   * fills as usual on a miss, and warming is not an invalidation, so nothing is published). A loader
   * may answer many keys at once (the active roster in one query). Failures are logged, not thrown.
   */
  async warm(
    items: ReadonlyArray<{
      loader: () => Promise<ReadonlyArray<{ key: string; value: unknown }>>
      opts?: EntryOptions
    }>,
  ): Promise<number> {
    let warmed = 0
    for (const item of items) {
      try {
        const versions = await this.tags.snapshot(item.opts?.tags)
        const rows = await item.loader()
        for (const row of rows) {
          if (this.l1.size >= this.options.l1MaxEntries) return warmed // never evict to warm
          this.l1.set(row.key, this.l1.capped(await this.entry(row.value ?? null, item.opts ?? {}, versions)))
          warmed++
        }
      } catch (err) {
        this.options.log.warn({ err }, 'cache warm-up failed for a group of keys')
      }
    }
    return warmed
  }

  /** Halve L1 when the heap is near its limit (least recently used entries go first). */
  checkMemory(heapUsed = process.memoryUsage().heapUsed): void {
    this.l1.checkMemory(heapUsed)
  }

  // ---- internals ----

  private async fromL2OrLoad<T>(
    key: string,
    loader: () => Promise<T | null | undefined>,
    opts: EntryOptions,
    stale: Entry | undefined,
  ): Promise<T | null> {
    const t0 = performance.now()
    const raw = await this.tier.get(key)
    this.metrics.latency.observe({ layer: 'l2', op: 'get' }, (performance.now() - t0) / 1000)
    if (raw) {
      const fromL2 = parseEntry(raw)
      if (fromL2 && fromL2.exp > this.now() && (await this.tags.current(fromL2))) {
        this.count('l2', 'hit')
        this.l1.set(key, this.l1.capped(fromL2))
        return fromL2.v as T | null
      }
      if (fromL2 && !stale && (await this.tags.current(fromL2))) stale = fromL2
    }
    if (this.tier.present) this.count('l2', raw ? 'stale' : 'miss')
    return this.load(key, loader, opts, stale)
  }

  private async load<T>(
    key: string,
    loader: () => Promise<T | null | undefined>,
    opts: EntryOptions,
    stale: Entry | undefined,
  ): Promise<T | null> {
    let value: T | null
    // the tags' versions as they are before the load: a change committed while the loader runs
    // bumps them, and the entry is then already outdated instead of cached as current
    const versions = await this.tags.snapshot(opts.tags)
    try {
      value = (await loader()) ?? null
      this.metrics.loads.inc({ result: 'ok' })
    } catch (err) {
      const now = this.now()
      if (stale && stale.exp + this.options.graceMs > now) {
        // fail-safe: the last good value, and the source is left alone for a moment
        this.metrics.loads.inc({ result: 'failsafe' })
        this.options.log.warn({ err, key }, 'loading failed; serving the last good value (fail-safe)')
        this.l1.set(key, { ...stale, exp: now + this.options.failSafeThrottleMs })
        return stale.v as T | null
      }
      this.metrics.loads.inc({ result: 'error' })
      throw err
    }
    const entry = await this.entry(value, opts, versions)
    this.l1.set(key, this.l1.capped(entry))
    await this.l2Set(key, entry)
    return value
  }

  private maybeRefreshHot(
    key: string,
    entry: Entry,
    loader: () => Promise<unknown>,
    opts: EntryOptions,
  ): void {
    const hits = this.l1.read(key)
    if (hits < this.options.hotHits || this.inflight.has(key)) return
    const ttl = this.ttl(opts, entry.v === null)
    if (entry.exp - this.now() > ttl * (1 - this.options.eagerRefreshAt)) return
    // a hot key is refreshed before it expires, so its readers never wait for the database
    this.l1.refreshing(key)
    const refresh = this.load(key, loader, opts, entry)
      .catch(() => undefined)
      .finally(() => this.inflight.delete(key))
    this.inflight.set(key, refresh)
  }

  private count(layer: 'l1' | 'l2', result: 'hit' | 'miss' | 'stale'): void {
    this.metrics.lookup(layer, result)
    this.options.onLookup?.(layer, result)
  }

  private ttl(opts: EntryOptions, negative: boolean): number {
    return negative
      ? (opts.negativeTtlMs ?? this.options.negativeTtlMs)
      : (opts.ttlMs ?? this.options.defaultTtlMs)
  }

  /**
   * An entry for `value`. `tagVersions`: the tags' versions read before the value was loaded (see
   * load): read after, an invalidation that came while the loader ran would be taken as already
   * included.
   */
  private async entry(
    value: unknown,
    opts: EntryOptions,
    tagVersions?: Record<string, number>,
  ): Promise<Entry> {
    const base = this.ttl(opts, value === null || value === undefined)
    const ttl = Math.max(1, Math.round(base * (1 + this.options.jitter * (2 * this.random() - 1))))
    const entry: Entry = { v: value ?? null, exp: this.now() + ttl }
    const versions = tagVersions ?? (await this.tags.snapshot(opts.tags))
    if (versions) entry.tv = versions
    return entry
  }

  private async l2Set(key: string, entry: Entry): Promise<void> {
    const px = Math.max(1, entry.exp - this.now() + this.options.graceMs)
    const t0 = performance.now()
    await this.tier.set(key, JSON.stringify(entry), px)
    this.metrics.latency.observe({ layer: 'l2', op: 'set' }, (performance.now() - t0) / 1000)
  }

  /** Another node invalidated something (from the bus): drop this node's L1 copies of it. */
  private invalidatedElsewhere(msg: BusMessage): void {
    this.metrics.invalidations.inc({ kind: 'bus' })
    if (msg.op === 'del' && Array.isArray(msg.keys)) for (const k of msg.keys) this.l1.delete(String(k))
    else if (msg.op === 'tag' && msg.tags && typeof msg.tags === 'object') this.tags.heard(msg.tags)
    else if (msg.op === 'prefix' && typeof msg.prefix === 'string') this.l1.dropPrefix(msg.prefix)
  }
}
