import type pg from 'pg'
import { type AnalyzeReport, analyzeQueries } from '../ops/analyze.js'
import type { PerfSnapshot } from './perf.js'

export interface Suggestion {
  category: 'database' | 'cache' | 'http' | 'system'
  priority: 'high' | 'medium' | 'low'
  message: string
  actions: string[]
  /** what the suggestion is based on (figures of the window, a query plan) */
  evidence: Record<string, unknown>
  expected?: string
}

/** The rules on the last minutes of this node: the seed's two, and the ones its figures call for. */
export function ruleSuggestions(p: PerfSnapshot, slowQueryMs: number): Suggestion[] {
  const out: Suggestion[] = []
  if (p.dbOverall.count > 0 && p.dbOverall.avgMs > 500) {
    out.push({
      category: 'database',
      priority: 'high',
      message: `average query time is ${Math.round(p.dbOverall.avgMs)} ms over the last ${p.windowSeconds} s (over 500 ms)`,
      actions: ['review indexes', 'optimise queries', 'consider partitioning'],
      evidence: { avgMs: p.dbOverall.avgMs, queries: p.dbOverall.count },
      expected: '+50 % query performance',
    })
  }
  const lookups = p.cache.l1.hits + p.cache.l1.misses + p.cache.l1.stale
  if (p.cache.overallHitRate !== null && lookups >= 100 && p.cache.overallHitRate < 0.7) {
    out.push({
      category: 'cache',
      priority: 'medium',
      message: `cache hit rate is ${(p.cache.overallHitRate * 100).toFixed(1)} % (under 70 %)`,
      actions: ['review the key strategy', 'adjust TTLs', 'strengthen warm-up', 'raise CACHE_L1_MAX_ENTRIES'],
      evidence: { hitRate: p.cache.overallHitRate, lookups, l1: p.cache.l1, l2: p.cache.l2 },
      expected: '-30 % response time',
    })
  }
  for (const q of p.db) {
    if (q.count >= 5 && q.p95Ms > slowQueryMs) {
      out.push({
        category: 'database',
        priority: 'high',
        message: `query ${q.query}: p95 ${Math.round(q.p95Ms)} ms over ${q.count} runs`,
        actions: ['run `gate-cloud analyze` for its plan', 'check the index it should use'],
        evidence: { query: q.query, p95Ms: q.p95Ms, count: q.count, errors: q.errors },
      })
    }
    if (q.count >= 20 && q.errorRate > 0.05) {
      out.push({
        category: 'database',
        priority: 'high',
        message: `query ${q.query} fails ${(q.errorRate * 100).toFixed(1)} % of the time`,
        actions: ['read the service log for the errors', 'check Postgres health and PG_STATEMENT_TIMEOUT_MS'],
        evidence: { query: q.query, errors: q.errors, count: q.count },
      })
    }
  }
  for (const r of p.routes) {
    if (r.count >= 20 && r.errorRate > 0.05) {
      out.push({
        category: 'http',
        priority: 'medium',
        message: `${r.route} answers 5xx ${(r.errorRate * 100).toFixed(1)} % of the time`,
        actions: ['read the service log', 'check the dependencies it calls'],
        evidence: { route: r.route, errors: r.errors, count: r.count },
      })
    }
  }
  if (p.system.eventLoopLagP99MsMax > 100) {
    out.push({
      category: 'system',
      priority: 'high',
      message: `event-loop lag reached ${Math.round(p.system.eventLoopLagP99MsMax)} ms (p99 of a second)`,
      actions: ['add a node (see the autoscaler)', 'look for synchronous work in request handlers'],
      evidence: { eventLoopLagP99MsMax: p.system.eventLoopLagP99MsMax, eluAvg: p.system.eluAvg },
    })
  }
  if (p.system.memoryUsedMax > 0.9) {
    out.push({
      category: 'system',
      priority: 'high',
      message: `machine memory use reached ${(p.system.memoryUsedMax * 100).toFixed(0)} %`,
      actions: ['lower CACHE_L1_MAX_BYTES', 'add memory or nodes'],
      evidence: { memoryUsedMax: p.system.memoryUsedMax },
    })
  }
  return out
}

/**
 * Suggestions from the database itself: EXPLAIN (ANALYZE, BUFFERS) of the seed's critical queries
 * on the live data (unpruned partitions, sequential scans on large tables, missing indexes) and
 * the top statements of pg_stat_statements when the extension is installed.
 */
export function planSuggestions(report: AnalyzeReport): Suggestion[] {
  const out: Suggestion[] = []
  for (const q of report.queries) {
    for (const s of q.suggestions) {
      out.push({
        category: 'database',
        priority: /sequential scan|no index|missing/i.test(s) ? 'high' : 'medium',
        message: `${q.name}: ${s}`,
        actions: ['see `gate-cloud analyze` for the full plan'],
        evidence: {
          executionMs: q.executionMs,
          indexes: q.indexes,
          seqScans: q.seqScans,
          partitionsScanned: q.partitionsScanned,
          partitionsTotal: q.partitionsTotal,
        },
      })
    }
  }
  for (const g of report.general) {
    out.push({ category: 'database', priority: 'low', message: g, actions: [], evidence: {} })
  }
  for (const t of report.topStatements ?? []) {
    if (t.meanMs > 100) {
      out.push({
        category: 'database',
        priority: t.meanMs > 500 ? 'high' : 'medium',
        message: `a statement averages ${Math.round(t.meanMs)} ms over ${t.calls} calls`,
        actions: ['EXPLAIN it', 'index its filter columns'],
        evidence: { query: t.query.slice(0, 300), calls: t.calls, meanMs: t.meanMs },
      })
    }
  }
  return out
}

/** EXPLAIN is not free: its report is kept for a minute. */
export class PlanAdvisor {
  private cached: { at: number; report: AnalyzeReport } | null = null

  constructor(
    private readonly pool: pg.Pool,
    private readonly ttlMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  async suggestions(): Promise<Suggestion[]> {
    if (!this.cached || this.now() - this.cached.at > this.ttlMs) {
      const client = await this.pool.connect()
      try {
        this.cached = { at: this.now(), report: await analyzeQueries(client) }
      } finally {
        client.release()
      }
    }
    return planSuggestions(this.cached.report)
  }
}
