import { randomUUID } from 'node:crypto'
import { getHeapStatistics } from 'node:v8'
import type { Cluster, Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import type { Logger } from 'pino'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { CloudConfig } from '../config.js'
import type { PerfMonitor } from '../monitor/perf.js'
import { Circuit, type CircuitState } from './circuit.js'
import type { RedisPair } from './redis.js'

/**
 * One entry, the same in both layers. `v` is the value; `null` is a cached "does not exist"
 * (negative caching). `exp` is when it stops being fresh (logical expiry, ms since epoch); it is
 * kept `grace` ms longer so that it can be served when the source fails (fail-safe). `tv` holds
 * the version of each of its tags when it was written: a tag invalidation bumps the version.
 */
interface Entry {
  v: unknown
  exp: number
  tv?: Record<string, number>
}

/** How one key is cached. */
export interface EntryOptions {
  /** freshness, ms (L1 caps it at `l1MaxTtlMs`) */
  ttlMs?: number
  /** freshness of a cached "not found", ms */
  negativeTtlMs?: number
  /** tags: invalidating a tag drops every entry written with it, on every node */
  tags?: readonly string[]
}

export interface TieredCacheOptions {
  /** L1 bounds: entries and bytes (JSON length of the values) */
  l1MaxEntries: number
  l1MaxBytes: number
  /** longest time an entry stays fresh in L1, ms (the seed's 5 minutes) */
  l1MaxTtlMs: number
  defaultTtlMs: number
  negativeTtlMs: number
  /** TTLs get +/- this fraction at random, so keys written together do not expire together */
  jitter: number
  /** how long past its expiry an entry may still be served when the source fails, ms */
  graceMs: number
  /** after a failed refresh, the stale value is served for this long before the source is tried again, ms */
  failSafeThrottleMs: number
  /** an L1 entry read this many times is refreshed in the background before it expires */
  hotHits: number
  /** ... once this fraction of its freshness has passed */
  eagerRefreshAt: number
  /** the L1 is halved when the V8 heap passes this fraction of its limit */
  memoryPressure: number
  /** L2 (Redis or Redis Cluster); null: L1 only */
  redis: Redis | Cluster | null
  /** a second connection for the invalidation bus (subscriber mode); null: no bus */
  subscriber: Redis | Cluster | null
  /** prefix of every L2 key and of the bus channel */
  keyPrefix: string
  circuitThreshold: number
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

type BusMessage =
  | { from: string; op: 'del'; keys: string[] }
  | { from: string; op: 'tag'; tags: Record<string, number> }
  | { from: string; op: 'prefix'; prefix: string }

/**
 * A two-tier cache: L1 in process (lru-cache, bounded by entries and bytes), L2 in Redis
 * (standalone or Cluster), the loader behind both. What it does for the callers:
 * - one load per key per node at a time (stampede protection), TTL jitter, negative caching;
 * - fail-safe: when the loader or Redis fails, the last good value is served for a grace period;
 *   a failing Redis opens a circuit (L2 skipped) and is retried by itself;
 * - invalidation by key, by tag (versioned tags: nothing is scanned) and by prefix (SCAN + UNLINK on
 *   every master, never KEYS), told to every node over a pub/sub bus so each drops its L1 copy;
 * - hot keys are refreshed in the background before they expire; L1 halves under memory pressure;
 * - per-layer hits, misses and latency as Prometheus metrics.
 */
export class TieredCache {
  readonly nodeId = randomUUID()
  private readonly l1: LRUCache<string, Entry>
  private readonly hits = new Map<string, number>()
  private readonly inflight = new Map<string, Promise<unknown>>()
  private readonly tagVersions = new Map<string, number>()
  private readonly circuit: Circuit
  private readonly o: TieredCacheOptions
  private readonly now: () => number
  private readonly random: () => number
  private readonly channel: string
  private pressureTimer: NodeJS.Timeout | null = null
  private readonly counters = new Map<string, { inc(): void }>()
  private readonly l1GetLatency: { observe(v: number): void }
  private busUp = false
  private readonly m: {
    requests: Counter<'layer' | 'result'>
    latency: Histogram<'layer' | 'op'>
    loads: Counter<'result'>
    circuit: Gauge
    l1Entries: Gauge
    l1Bytes: Gauge
    invalidations: Counter<'kind'>
  }

  constructor(opts: TieredCacheOptions) {
    this.o = opts
    this.now = opts.now ?? Date.now
    this.random = opts.random ?? Math.random
    this.channel = `${opts.keyPrefix}bus`
    this.l1 = new LRUCache<string, Entry>({
      max: opts.l1MaxEntries,
      maxSize: opts.l1MaxBytes,
      sizeCalculation: (e) => sizeOf(e.v),
      // physical lifetime: freshness plus grace (fail-safe); freshness itself is `exp`
      ttl: opts.l1MaxTtlMs + opts.graceMs,
      ttlAutopurge: false,
      dispose: (_v, key) => {
        this.hits.delete(key)
      },
    })
    const reg = opts.registry
    this.m = {
      requests: new Counter({
        name: 'cache_requests_total',
        help: 'Cache look-ups by layer and result (hit, miss, stale)',
        labelNames: ['layer', 'result'],
        registers: [reg],
      }),
      latency: new Histogram({
        name: 'cache_operation_duration_seconds',
        help: 'Cache operation latency by layer',
        labelNames: ['layer', 'op'],
        buckets: [0.00005, 0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
        registers: [reg],
      }),
      loads: new Counter({
        name: 'cache_loads_total',
        help: 'Loader calls by result (ok, error, failsafe: a stale value served instead)',
        labelNames: ['result'],
        registers: [reg],
      }),
      circuit: new Gauge({
        name: 'cache_l2_circuit_open',
        help: '1 while the circuit to Redis is open (L2 skipped)',
        registers: [reg],
      }),
      l1Entries: new Gauge({
        name: 'cache_l1_entries',
        help: 'Entries in L1',
        registers: [reg],
        collect: () => this.m.l1Entries.set(this.l1.size),
      }),
      l1Bytes: new Gauge({
        name: 'cache_l1_bytes',
        help: 'Approximate bytes of values in L1',
        registers: [reg],
        collect: () => this.m.l1Bytes.set(this.l1.calculatedSize),
      }),
      invalidations: new Counter({
        name: 'cache_invalidations_total',
        help: 'Invalidations by kind (key, tag, prefix, bus: received from another node)',
        labelNames: ['kind'],
        registers: [reg],
      }),
    }
    this.l1GetLatency = this.m.latency.labels('l1', 'get')
    this.circuit = new Circuit(opts.circuitThreshold, opts.circuitOpenMs, this.now, (s: CircuitState) => {
      this.m.circuit.set(s === 'open' ? 1 : 0)
      if (s === 'open') opts.log.warn('Redis is failing: circuit open, serving from L1 and the database')
      if (s === 'closed') opts.log.info('Redis is back: circuit closed')
    })
  }

  /** Start the bus and the memory-pressure watch. */
  async start(): Promise<void> {
    if (!this.o.redis) this.o.log.warn('no REDIS_URL: the cache runs on L1 (in process) alone')
    const sub = this.o.subscriber
    if (sub) {
      sub.on('message', (channel: string, raw: string) => {
        if (channel === this.channel) this.onBus(raw)
      })
      // messages missed while the bus was down may have invalidated anything: start L1 afresh
      sub.on('ready', () => {
        if (this.busUp) return
        this.busUp = true
        this.l1.clear()
        this.tagVersions.clear()
      })
      sub.on('close', () => {
        this.busUp = false
      })
      try {
        await sub.subscribe(this.channel)
        this.busUp = true
      } catch (err) {
        this.o.log.warn({ err }, 'cache bus not subscribed yet; retried when Redis is back')
      }
    }
    this.pressureTimer = setInterval(() => this.checkMemory(), 5_000)
    this.pressureTimer.unref()
  }

  async stop(): Promise<void> {
    if (this.pressureTimer) clearInterval(this.pressureTimer)
    this.pressureTimer = null
  }

  get circuitState(): CircuitState {
    return this.circuit.state
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
    const known = got ? this.tagsKnownCurrent(got) : false
    const e1 =
      got && (known === true || (known === undefined && (await this.tagsCurrent(got)))) ? got : undefined
    const now = this.now()
    if (e1) {
      if (e1.exp > now) {
        this.count('l1', 'hit')
        this.l1GetLatency.observe((performance.now() - t0) / 1000)
        this.maybeRefreshHot(key, e1, loader, opts)
        return e1.v as T | null
      }
      this.count('l1', 'stale')
    } else {
      this.count('l1', 'miss')
    }
    const running = this.inflight.get(key)
    if (running) return running as Promise<T | null>
    const p = this.fromL2OrLoad(key, loader, opts, e1).finally(() => this.inflight.delete(key))
    this.inflight.set(key, p)
    return p
  }

  /** Write a value to both layers (and so drop other nodes' L1 copies of the key). */
  async set(key: string, value: unknown, opts: EntryOptions = {}): Promise<void> {
    const entry = await this.entry(value, opts)
    this.l1.set(key, entry)
    await this.l2Set(key, entry)
    await this.publish({ from: this.nodeId, op: 'del', keys: [key] })
  }

  /** Drop keys from both layers, on every node. */
  async delete(...keys: string[]): Promise<void> {
    for (const k of keys) this.l1.delete(k)
    this.m.invalidations.inc({ kind: 'key' }, keys.length)
    await this.l2(async (r) => {
      for (const k of keys) await r.unlink(this.o.keyPrefix + k)
    })
    await this.publish({ from: this.nodeId, op: 'del', keys })
  }

  /**
   * Invalidate every entry written with one of `tags`, on every node: the tag's version is bumped
   * (INCR in Redis, one key per tag), nothing is scanned; entries of an older version are misses.
   */
  async invalidateTags(...tags: string[]): Promise<void> {
    const bumped: Record<string, number> = {}
    for (const t of tags) {
      const v = (await this.l2(async (r) => r.incr(this.tagKey(t)))) ?? (this.tagVersions.get(t) ?? 0) + 1
      // without Redis the local version goes up; with it, Redis' counter is the truth
      bumped[t] = Math.max(v, (this.tagVersions.get(t) ?? 0) + 1)
      this.tagVersions.set(t, bumped[t])
    }
    this.m.invalidations.inc({ kind: 'tag' }, tags.length)
    await this.publish({ from: this.nodeId, op: 'tag', tags: bumped })
  }

  /** Drop every key starting with `prefix`: SCAN + UNLINK on every Redis master, and every node's L1. */
  async deleteByPrefix(prefix: string): Promise<number> {
    let n = this.dropL1Prefix(prefix)
    // through the circuit like every L2 call: a failing Redis skips this part
    n +=
      (await this.l2(async (r) => {
        let removed = 0
        const masters =
          'nodes' in r && typeof r.nodes === 'function' ? (r as Cluster).nodes('master') : [r as Redis]
        for (const node of masters) {
          let cursor = '0'
          do {
            const [next, keys] = await node.scan(
              cursor,
              'MATCH',
              `${escapeGlob(this.o.keyPrefix + prefix)}*`,
              'COUNT',
              500,
            )
            cursor = next
            // one UNLINK per key: in a Cluster the keys of one batch may live in different slots
            for (const k of keys) removed += await node.unlink(k)
          } while (cursor !== '0')
        }
        return removed
      })) ?? 0
    this.m.invalidations.inc({ kind: 'prefix' })
    await this.publish({ from: this.nodeId, op: 'prefix', prefix })
    return n
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
    let n = 0
    for (const i of items) {
      try {
        const tv = await this.tagSnapshot(i.opts ?? {})
        const rows = await i.loader()
        for (const r of rows) {
          if (this.l1.size >= this.o.l1MaxEntries) return n // never evict to warm
          this.l1.set(r.key, this.capForL1(await this.entry(r.value ?? null, i.opts ?? {}, tv)))
          n++
        }
      } catch (err) {
        this.o.log.warn({ err }, 'cache warm-up failed for a group of keys')
      }
    }
    return n
  }

  // ---- internals ----

  private async fromL2OrLoad<T>(
    key: string,
    loader: () => Promise<T | null | undefined>,
    opts: EntryOptions,
    stale: Entry | undefined,
  ): Promise<T | null> {
    const t0 = performance.now()
    const raw = await this.l2(async (r) => r.get(this.o.keyPrefix + key))
    this.m.latency.observe({ layer: 'l2', op: 'get' }, (performance.now() - t0) / 1000)
    if (raw) {
      const e2 = parseEntry(raw)
      if (e2 && e2.exp > this.now() && (await this.tagsCurrent(e2))) {
        this.count('l2', 'hit')
        this.l1.set(key, this.capForL1(e2))
        return e2.v as T | null
      }
      if (e2 && !stale && (await this.tagsCurrent(e2))) stale = e2
    }
    if (this.o.redis) this.count('l2', raw ? 'stale' : 'miss')
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
    const tv = await this.tagSnapshot(opts)
    try {
      value = (await loader()) ?? null
      this.m.loads.inc({ result: 'ok' })
    } catch (err) {
      const now = this.now()
      if (stale && stale.exp + this.o.graceMs > now) {
        // fail-safe: the last good value, and the source is left alone for a moment
        this.m.loads.inc({ result: 'failsafe' })
        this.o.log.warn({ err, key }, 'loading failed; serving the last good value (fail-safe)')
        this.l1.set(key, { ...stale, exp: now + this.o.failSafeThrottleMs })
        return stale.v as T | null
      }
      this.m.loads.inc({ result: 'error' })
      throw err
    }
    const entry = await this.entry(value, opts, tv)
    this.l1.set(key, this.capForL1(entry))
    await this.l2Set(key, entry)
    return value
  }

  private maybeRefreshHot(key: string, e: Entry, loader: () => Promise<unknown>, opts: EntryOptions): void {
    const h = (this.hits.get(key) ?? 0) + 1
    this.hits.set(key, h)
    if (h < this.o.hotHits || this.inflight.has(key)) return
    const ttl = this.ttl(opts, e.v === null)
    if (e.exp - this.now() > ttl * (1 - this.o.eagerRefreshAt)) return
    // a hot key is refreshed before it expires, so its readers never wait for the database
    this.hits.set(key, 0)
    const p = this.load(key, loader, opts, e)
      .catch(() => undefined)
      .finally(() => this.inflight.delete(key))
    this.inflight.set(key, p)
  }

  /** Tags current (true), outdated (false) or not known locally yet (undefined: ask Redis). */
  private tagsKnownCurrent(e: Entry): boolean | undefined {
    if (!e.tv) return true
    for (const t in e.tv) {
      const v = this.tagVersions.get(t)
      if (v === undefined) return undefined
      if (v !== e.tv[t]) return false
    }
    return true
  }

  private count(layer: 'l1' | 'l2', result: 'hit' | 'miss' | 'stale'): void {
    // label children are resolved once: hashing a label object per look-up costs more than the look-up
    let c = this.counters.get(`${layer}:${result}`)
    if (!c) {
      c = this.m.requests.labels(layer, result)
      this.counters.set(`${layer}:${result}`, c)
    }
    c.inc()
    this.o.onLookup?.(layer, result)
  }

  private ttl(opts: EntryOptions, negative: boolean): number {
    return negative ? (opts.negativeTtlMs ?? this.o.negativeTtlMs) : (opts.ttlMs ?? this.o.defaultTtlMs)
  }

  /**
   * An entry for `value`. `tv`: the tags' versions read before the value was loaded (see load):
   * read after, an invalidation that came while the loader ran would be taken as already included.
   */
  private async entry(value: unknown, opts: EntryOptions, tv?: Record<string, number>): Promise<Entry> {
    const base = this.ttl(opts, value === null || value === undefined)
    const ttl = Math.max(1, Math.round(base * (1 + this.o.jitter * (2 * this.random() - 1))))
    const e: Entry = { v: value ?? null, exp: this.now() + ttl }
    const versions = tv ?? (await this.tagSnapshot(opts))
    if (versions) e.tv = versions
    return e
  }

  /** The current versions of an entry's tags (undefined when it has none). */
  private async tagSnapshot(opts: EntryOptions): Promise<Record<string, number> | undefined> {
    if (!opts.tags || opts.tags.length === 0) return undefined
    const tv: Record<string, number> = {}
    for (const t of opts.tags) tv[t] = await this.tagVersion(t)
    return tv
  }

  private capForL1(e: Entry): Entry {
    const cap = this.now() + this.o.l1MaxTtlMs
    return e.exp > cap ? { ...e, exp: cap } : e
  }

  private async l2Set(key: string, e: Entry): Promise<void> {
    const px = Math.max(1, e.exp - this.now() + this.o.graceMs)
    const t0 = performance.now()
    await this.l2(async (r) => r.set(this.o.keyPrefix + key, JSON.stringify(e), 'PX', px))
    this.m.latency.observe({ layer: 'l2', op: 'set' }, (performance.now() - t0) / 1000)
  }

  private async tagVersion(tag: string): Promise<number> {
    const known = this.tagVersions.get(tag)
    if (known !== undefined) return known
    const raw = await this.l2(async (r) => r.get(this.tagKey(tag)))
    const v = Number(raw ?? 0)
    this.tagVersions.set(tag, v)
    return v
  }

  private async tagsCurrent(e: Entry): Promise<boolean> {
    if (!e.tv) return true
    for (const [t, v] of Object.entries(e.tv)) if ((await this.tagVersion(t)) !== v) return false
    return true
  }

  private tagKey(tag: string): string {
    return `${this.o.keyPrefix}tag:${tag}`
  }

  /** Run an L2 call through the circuit; null when L2 is absent, open or failing. */
  private async l2<R>(fn: (r: Redis | Cluster) => Promise<R>): Promise<R | null> {
    const r = this.o.redis
    if (!r || !this.circuit.allow()) return null
    try {
      const out = await fn(r)
      this.circuit.success()
      return out
    } catch (err) {
      this.circuit.failure()
      this.o.log.debug({ err }, 'Redis call failed')
      return null
    }
  }

  private async publish(msg: BusMessage): Promise<void> {
    if (!this.o.subscriber) return
    await this.l2(async (r) => r.publish(this.channel, JSON.stringify(msg)))
  }

  private onBus(raw: string): void {
    let msg: BusMessage
    try {
      msg = JSON.parse(raw) as BusMessage
    } catch {
      this.o.log.warn('unreadable cache bus message ignored')
      return
    }
    if (!msg || msg.from === this.nodeId) return
    this.m.invalidations.inc({ kind: 'bus' })
    if (msg.op === 'del' && Array.isArray(msg.keys)) for (const k of msg.keys) this.l1.delete(String(k))
    else if (msg.op === 'tag' && msg.tags && typeof msg.tags === 'object') {
      for (const [t, v] of Object.entries(msg.tags))
        if (typeof v === 'number' && v > (this.tagVersions.get(t) ?? -1)) this.tagVersions.set(t, v)
    } else if (msg.op === 'prefix' && typeof msg.prefix === 'string') this.dropL1Prefix(msg.prefix)
  }

  private dropL1Prefix(prefix: string): number {
    let n = 0
    for (const k of [...this.l1.keys()]) {
      if (k.startsWith(prefix)) {
        this.l1.delete(k)
        n++
      }
    }
    return n
  }

  /** Halve L1 when the heap is near its limit (least recently used entries go first). */
  checkMemory(heapUsed = process.memoryUsage().heapUsed): void {
    const limit = getHeapStatistics().heap_size_limit
    if (heapUsed / limit < this.o.memoryPressure || this.l1.size === 0) return
    const target = Math.floor(this.l1.size / 2)
    while (this.l1.size > target) this.l1.pop()
    this.o.log.warn({ heapUsed, limit, l1: this.l1.size }, 'memory pressure: L1 cache halved')
  }
}

function sizeOf(v: unknown): number {
  if (v === null || v === undefined) return 8
  if (typeof v === 'string') return v.length + 8
  try {
    return Math.max(8, JSON.stringify(v)?.length ?? 8)
  } catch {
    return 1024
  }
}

function parseEntry(raw: string): Entry | null {
  try {
    const e = JSON.parse(raw) as Entry
    return e && typeof e === 'object' && typeof e.exp === 'number' && 'v' in e ? e : null
  } catch {
    return null
  }
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
}
