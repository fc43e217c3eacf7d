/** What the agent benchmark measures the agent with, in the agent's own process. */
import { readFileSync } from 'node:fs'
import v8 from 'node:v8'
import type { Clock } from '../../agent/clock.js'
import { fmt, mb } from './plain-format.js'

/** Latencies in 10 µs bins up to 1 s: constant memory however long the run (the bench must not inflate RSS). */
export class LatencyHistogram {
  private readonly bins = new Uint32Array(100_000)
  overflow = 0
  private max = 0
  count = 0
  record(ms: number): void {
    const us = Math.round(ms * 100)
    this.count++
    if (ms > this.max) this.max = ms
    if (us >= this.bins.length) this.overflow++
    else this.bins[us] = (this.bins[us] ?? 0) + 1
  }
  /** the p-th percentile, ms */
  p(p: number): number {
    if (this.count === 0) return Number.NaN
    if (p >= 100) return this.max
    const want = Math.ceil((p / 100) * this.count)
    let seen = 0
    for (let i = 0; i < this.bins.length; i++) {
      seen += this.bins[i] ?? 0
      if (seen >= want) return i / 100
    }
    return this.max
  }
}

/** The pipeline's clock in the benchmark: virtual, moved forward by the crowd. */
export class VirtualClock implements Clock {
  private v = 1_000
  private readonly wall0 = Date.now()
  now(): number {
    return this.wall0 + this.v
  }
  mono(): number {
    return this.v
  }
  set(v: number): void {
    if (v > this.v) this.v = v
  }
}

/** Where resident memory is (Linux): anonymous (heap, malloc) versus file-backed (the node binary, libraries). */
export function procMemory(): string {
  try {
    const st = readFileSync('/proc/self/status', 'utf8')
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(st)?.[1] ?? Number.NaN) / 1024
    const h = v8.getHeapStatistics()
    return `VmRSS ${fmt(kb('VmRSS'), 1)} MB = anon ${fmt(kb('RssAnon'), 1)} + file ${fmt(kb('RssFile'), 1)} + shmem ${fmt(kb('RssShmem'), 1)}; peak ${fmt(kb('VmHWM'), 1)} MB; V8 heap resident ${fmt(mb(h.total_physical_size), 1)} MB (${v8
      .getHeapSpaceStatistics()
      .filter((x) => x.physical_space_size > 512 * 1024)
      .map((x) => `${x.space_name.replace(/_space$/, '')} ${fmt(mb(x.physical_space_size), 1)}`)
      .join(', ')}), V8 malloc ${fmt(mb(h.malloced_memory), 1)} MB`
  } catch {
    return 'n/a'
  }
}
