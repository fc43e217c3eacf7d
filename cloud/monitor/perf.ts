import os from 'node:os'
import { type IntervalHistogram, monitorEventLoopDelay, performance } from 'node:perf_hooks'
import type { Logger } from 'pino'
import { Counter, Histogram, type Registry } from 'prom-client'
import type { CloudConfig } from '../config.js'
import { CountWindow, LatencyWindow, type WindowStats } from './window.js'

/** The node's monitor from its configuration (serve, and an app built without one). */
export function createPerfMonitor(config: CloudConfig, log: Logger, registry: Registry): PerfMonitor {
  return new PerfMonitor({
    slowRequestMs: config.monitor.slowRequestMs,
    slowQueryMs: config.monitor.slowQueryMs,
    windowSeconds: 300,
    log,
    registry,
  })
}

export interface PerfOptions {
  /** a request slower than this is logged with its context and counted, ms (the seed's 1 s) */
  slowRequestMs: number
  /** a database query slower than this is logged and counted, ms */
  slowQueryMs: number
  /** the window of /v1/perf, s (the seed's 5 minutes) */
  windowSeconds: number
  log: Logger
  registry: Registry
  now?: () => number
}

/** One second of this node's health. */
export interface SystemSample {
  ts: number
  /** this process' CPU time over the second, % of one core */
  cpuPercent: number
  /** 1-minute load average divided by the number of CPUs */
  load1PerCpu: number
  rssBytes: number
  heapUsedBytes: number
  /** the machine's memory in use, fraction */
  memoryUsed: number
  eventLoopLagP99Ms: number
  /** event-loop utilisation over the second, 0..1 */
  elu: number
}

export interface PerfSnapshot {
  windowSeconds: number
  generatedAt: string
  requests: WindowStats
  routes: Array<{ route: string } & WindowStats>
  slowRequests: number
  db: Array<{ query: string } & WindowStats>
  dbOverall: WindowStats
  slowQueries: number
  cache: {
    l1: { hits: number; misses: number; stale: number; hitRate: number | null }
    l2: { hits: number; misses: number; stale: number; hitRate: number | null }
    /** look-ups answered by a cache layer over all look-ups */
    overallHitRate: number | null
  }
  system: {
    now: SystemSample | null
    cpuPercentAvg: number
    memoryUsedMax: number
    eventLoopLagP99MsMax: number
    eluAvg: number
  }
}

/**
 * The node's performance over the last minutes, in bounded memory: requests by route, named
 * database queries, cache look-ups by layer, and a per-second system sample (CPU, memory, event
 * loop). Feeds /v1/perf, the suggestions and the alert rules; the same events also go to
 * Prometheus histograms for long-term dashboards.
 */
export class PerfMonitor {
  private readonly routes = new Map<string, LatencyWindow>()
  private readonly all: LatencyWindow
  private readonly queries = new Map<string, LatencyWindow>()
  private readonly dbAll: LatencyWindow
  private readonly counts: CountWindow
  private readonly samples: SystemSample[] = []
  private timer: NodeJS.Timeout | null = null
  private eld: IntervalHistogram | null = null
  private lastCpu = process.cpuUsage()
  private lastTs = 0
  private lastElu = performance.eventLoopUtilization()
  private readonly now: () => number
  private readonly dbDuration: Histogram<'query' | 'status'>
  private readonly slowReq: Counter<'route'>
  private readonly slowQuery: Counter<'query'>

  constructor(private readonly o: PerfOptions) {
    this.now = o.now ?? Date.now
    this.all = new LatencyWindow(o.windowSeconds, this.now)
    this.dbAll = new LatencyWindow(o.windowSeconds, this.now)
    this.counts = new CountWindow(o.windowSeconds, this.now)
    this.dbDuration = new Histogram({
      name: 'db_query_duration_seconds',
      help: 'Named database query durations by status (ok, error)',
      labelNames: ['query', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [o.registry],
    })
    this.slowReq = new Counter({
      name: 'http_slow_requests_total',
      help: `Requests slower than the slow-request threshold`,
      labelNames: ['route'],
      registers: [o.registry],
    })
    this.slowQuery = new Counter({
      name: 'db_slow_queries_total',
      help: 'Database queries slower than the slow-query threshold',
      labelNames: ['query'],
      registers: [o.registry],
    })
  }

  start(): void {
    this.eld = monitorEventLoopDelay({ resolution: 10 })
    this.eld.enable()
    this.lastTs = performance.now()
    this.timer = setInterval(() => this.sample(), 1_000)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    this.eld?.disable()
  }

  /** One finished HTTP request (route = the route pattern). */
  recordRequest(
    method: string,
    route: string,
    status: number,
    ms: number,
    context: Record<string, unknown> = {},
  ): void {
    const key = `${method} ${route}`
    let w = this.routes.get(key)
    if (!w) {
      w = new LatencyWindow(this.o.windowSeconds, this.now)
      this.routes.set(key, w)
    }
    const error = status >= 500
    w.record(ms, error)
    this.all.record(ms, error)
    if (ms > this.o.slowRequestMs) {
      this.counts.add('slowRequest')
      this.slowReq.inc({ route: key })
      this.o.log.warn({ ...context, method, route, status, ms: Math.round(ms) }, 'slow request')
    }
  }

  /** Run a named database query, timing it (and its failure). */
  async time<T>(query: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now()
    let error = false
    try {
      return await fn()
    } catch (err) {
      error = true
      throw err
    } finally {
      const ms = performance.now() - t0
      let w = this.queries.get(query)
      if (!w) {
        w = new LatencyWindow(this.o.windowSeconds, this.now)
        this.queries.set(query, w)
      }
      w.record(ms, error)
      this.dbAll.record(ms, error)
      this.dbDuration.observe({ query, status: error ? 'error' : 'ok' }, ms / 1000)
      if (ms > this.o.slowQueryMs) {
        this.counts.add('slowQuery')
        this.slowQuery.inc({ query })
        this.o.log.warn({ query, ms: Math.round(ms), failed: error }, 'slow query')
      }
    }
  }

  /** One cache look-up answered (or not) by a layer. */
  recordCache(layer: 'l1' | 'l2', result: 'hit' | 'miss' | 'stale'): void {
    this.counts.add(`${layer}:${result}`)
  }

  /** The latest system sample (null before the first second). */
  latest(): SystemSample | null {
    return this.samples[this.samples.length - 1] ?? null
  }

  snapshot(): PerfSnapshot {
    const c = this.counts.totals()
    const layer = (l: 'l1' | 'l2') => {
      const hits = c.get(`${l}:hit`) ?? 0
      const misses = c.get(`${l}:miss`) ?? 0
      const stale = c.get(`${l}:stale`) ?? 0
      const n = hits + misses + stale
      return { hits, misses, stale, hitRate: n ? hits / n : null }
    }
    const l1 = layer('l1')
    const l2 = layer('l2')
    const lookups = l1.hits + l1.misses + l1.stale
    const cutoff = this.now() - this.o.windowSeconds * 1000
    const recent = this.samples.filter((s) => s.ts >= cutoff)
    const avg = (f: (s: SystemSample) => number) =>
      recent.length ? recent.reduce((a, s) => a + f(s), 0) / recent.length : 0
    const max = (f: (s: SystemSample) => number) => recent.reduce((a, s) => Math.max(a, f(s)), 0)
    return {
      windowSeconds: this.o.windowSeconds,
      generatedAt: new Date(this.now()).toISOString(),
      requests: this.all.stats(),
      routes: [...this.routes].map(([route, w]) => ({ route, ...w.stats() })).filter((r) => r.count > 0),
      slowRequests: c.get('slowRequest') ?? 0,
      db: [...this.queries].map(([query, w]) => ({ query, ...w.stats() })).filter((q) => q.count > 0),
      dbOverall: this.dbAll.stats(),
      slowQueries: c.get('slowQuery') ?? 0,
      cache: { l1, l2, overallHitRate: lookups ? (l1.hits + l2.hits) / lookups : null },
      system: {
        now: this.latest(),
        cpuPercentAvg: avg((s) => s.cpuPercent),
        memoryUsedMax: max((s) => s.memoryUsed),
        eventLoopLagP99MsMax: max((s) => s.eventLoopLagP99Ms),
        eluAvg: avg((s) => s.elu),
      },
    }
  }

  private sample(): void {
    const t = performance.now()
    const cpu = process.cpuUsage(this.lastCpu)
    const wallUs = Math.max(1, (t - this.lastTs) * 1000)
    this.lastCpu = process.cpuUsage()
    this.lastTs = t
    const elu = performance.eventLoopUtilization(this.lastElu)
    this.lastElu = performance.eventLoopUtilization()
    const mem = process.memoryUsage()
    const s: SystemSample = {
      ts: this.now(),
      cpuPercent: ((cpu.user + cpu.system) / wallUs) * 100,
      load1PerCpu: (os.loadavg()[0] ?? 0) / Math.max(1, os.cpus().length),
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      memoryUsed: 1 - os.freemem() / os.totalmem(),
      eventLoopLagP99Ms: this.eld ? this.eld.percentile(99) / 1e6 : 0,
      elu: elu.utilization,
    }
    this.eld?.reset()
    this.samples.push(s)
    // bounded: one sample per second over the window
    while (this.samples.length > this.o.windowSeconds) this.samples.shift()
  }
}
