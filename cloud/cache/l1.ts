import { getHeapStatistics } from 'node:v8'
import { LRUCache } from 'lru-cache'
import type { Logger } from 'pino'
import { type Entry, sizeOf } from './entry.js'

export interface L1Options {
  /** bound on the entries */
  maxEntries: number
  /** bound on the bytes of the values (their JSON length) */
  maxBytes: number
  /** longest time an entry stays fresh in L1, ms */
  maxTtlMs: number
  /** how long past its freshness an entry is kept, to be served when the source fails, ms */
  graceMs: number
  /** the L1 is halved when the V8 heap passes this fraction of its limit */
  memoryPressure: number
  log: Logger
  now: () => number
}

/**
 * The cache's first tier, in process: an LRU bounded by entries and by bytes, whose entries are kept
 * for their freshness plus the grace period (freshness itself is each entry's `exp`), with the
 * reads of each key counted (hot keys are refreshed before they expire). It halves itself when the
 * V8 heap nears its limit.
 */
export class L1 {
  private readonly lru: LRUCache<string, Entry>
  /** reads of each key since it was last refreshed */
  private readonly hits = new Map<string, number>()

  constructor(private readonly options: L1Options) {
    this.lru = new LRUCache<string, Entry>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: (entry) => sizeOf(entry.v),
      // physical lifetime: freshness plus grace (fail-safe); freshness itself is `exp`
      ttl: options.maxTtlMs + options.graceMs,
      ttlAutopurge: false,
      dispose: (_v, key) => {
        this.hits.delete(key)
      },
    })
  }

  get size(): number {
    return this.lru.size
  }

  /** Approximate bytes of the values held. */
  get calculatedSize(): number {
    return this.lru.calculatedSize
  }

  get(key: string): Entry | undefined {
    return this.lru.get(key)
  }

  set(key: string, entry: Entry): void {
    this.lru.set(key, entry)
  }

  /** `entry` with its freshness capped at L1's longest. */
  capped(entry: Entry): Entry {
    const cap = this.options.now() + this.options.maxTtlMs
    return entry.exp > cap ? { ...entry, exp: cap } : entry
  }

  delete(key: string): void {
    this.lru.delete(key)
  }

  clear(): void {
    this.lru.clear()
  }

  /** Drop every key starting with `prefix`; how many were dropped. */
  dropPrefix(prefix: string): number {
    let dropped = 0
    for (const key of [...this.lru.keys()]) {
      if (key.startsWith(prefix)) {
        this.lru.delete(key)
        dropped++
      }
    }
    return dropped
  }

  /** One more read of `key`: how many since it was last refreshed. */
  read(key: string): number {
    const hits = (this.hits.get(key) ?? 0) + 1
    this.hits.set(key, hits)
    return hits
  }

  /** `key` is being refreshed: its reads count from zero again. */
  refreshing(key: string): void {
    this.hits.set(key, 0)
  }

  /** Halve L1 when the heap is near its limit (least recently used entries go first). */
  checkMemory(heapUsed: number): void {
    const limit = getHeapStatistics().heap_size_limit
    if (heapUsed / limit < this.options.memoryPressure || this.lru.size === 0) return
    const target = Math.floor(this.lru.size / 2)
    while (this.lru.size > target) this.lru.pop()
    this.options.log.warn({ heapUsed, limit, l1: this.lru.size }, 'memory pressure: L1 cache halved')
  }
}
