import { once } from 'node:events'
import http from 'node:http'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { loadCloudConfig } from '../../../cloud/config.js'
import { createPool } from '../../../cloud/db/pool.js'
import { buildApp } from '../../../cloud/http/app.js'
import { createPerfMonitor, PerfMonitor } from '../../../cloud/monitor/perf.js'
import { ruleSuggestions } from '../../../cloud/monitor/suggestions.js'
import { LatencyWindow } from '../../../cloud/monitor/window.js'
import { silentLog } from '../../support/helpers.js'
import { tempDatabase } from '../../support/pg-helpers.js'

describe('latency window', () => {
  it('gives percentiles within the histogram resolution and forgets what left the window', () => {
    let now = 1_000_000
    const w = new LatencyWindow(300, () => now)
    for (let i = 1; i <= 1000; i++) w.record(i / 10, i > 990) // 0.1 .. 100 ms, 10 errors
    const s = w.stats()
    expect(s.count).toBe(1000)
    expect(s.errors).toBe(10)
    expect(s.avgMs).toBeCloseTo(50.05, 1)
    // bins are ~12 % wide: a percentile is within 12 % above the exact value
    expect(s.p50Ms).toBeGreaterThanOrEqual(50)
    expect(s.p50Ms).toBeLessThan(50 * 1.13)
    expect(s.p99Ms).toBeGreaterThanOrEqual(99)
    expect(s.p99Ms).toBeLessThanOrEqual(100)
    now += 301_000
    expect(w.stats().count).toBe(0)
    w.record(5)
    expect(w.stats()).toMatchObject({ count: 1, maxMs: 5 })
  })

  it('stays the same size whatever the traffic', () => {
    const w = new LatencyWindow(60)
    const before = process.memoryUsage().heapUsed
    for (let i = 0; i < 500_000; i++) w.record(Math.random() * 100)
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(20 * 1024 * 1024)
    expect(w.stats().count).toBe(500_000)
  })
})

describe('performance monitor and suggestions', () => {
  it('times named queries, logs slow ones and raises the seed rules', async () => {
    const registry = new Registry()
    const perf = new PerfMonitor({
      slowRequestMs: 1000,
      slowQueryMs: 100,
      windowSeconds: 300,
      log: silentLog,
      registry,
    })
    await perf.time('query.slow', () => new Promise((r) => setTimeout(r, 550)))
    await expect(
      perf.time(
        'query.broken',
        () => new Promise((_, fail) => setTimeout(() => fail(new Error('boom')), 550)),
      ),
    ).rejects.toThrow('boom')
    for (let i = 0; i < 100; i++) perf.recordCache('l1', i < 40 ? 'hit' : 'miss')
    perf.recordRequest('GET', '/v1/query/tokens/:token', 200, 1500)
    const snap = perf.snapshot()
    expect(snap.db.map((q) => q.query).sort()).toEqual(['query.broken', 'query.slow'])
    expect(snap.slowQueries).toBe(2)
    expect(snap.slowRequests).toBe(1)
    expect(snap.cache.overallHitRate).toBeCloseTo(0.4)
    const s = ruleSuggestions(snap, 100)
    // average query time over 500 ms -> database, high (the seed's first rule), with its expected gain
    expect(s).toContainEqual(
      expect.objectContaining({
        category: 'database',
        priority: 'high',
        expected: '+50 % query performance',
      }),
    )
    // hit rate under 0.7 -> cache, medium (the seed's second rule)
    expect(s).toContainEqual(
      expect.objectContaining({ category: 'cache', priority: 'medium', expected: '-30 % response time' }),
    )
    const metrics = await registry.metrics()
    expect(metrics).toMatch(/^db_query_duration_seconds_count\{query="query.broken",status="error"\} 1$/m)
    expect(metrics).toMatch(/^db_slow_queries_total\{query="query.slow"\} 1$/m)
    perf.stop()
  })
})

describe('the performance monitor on the live service', () => {
  it("leaves the dashboard's event stream out: a tab open and closed is not a slow request", async () => {
    const db = await tempDatabase()
    const config = loadCloudConfig({
      DATABASE_URL: db.url,
      OPS_TOKEN: 'ops-token-for-perf-tests-0123',
      SLOW_REQUEST_MS: '100',
    })
    const pool = createPool(config)
    const lines: string[] = []
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) })
    const registry = new Registry()
    const perf = createPerfMonitor(config, log, registry)
    const app = await buildApp({ config, pool, log, perf, registry })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
    try {
      // a dashboard tab: the stream is open, its first event read
      const tab = http.get(`${base}/v1/dashboard/stream`, {
        headers: { authorization: 'Bearer ops-token-for-perf-tests-0123' },
      })
      const [res] = (await once(tab, 'response')) as [http.IncomingMessage]
      expect(res.statusCode).toBe(200)
      await once(res, 'data')
      // an open stream is not load: the router would otherwise steer away from a node with tabs open
      const load = (await (await fetch(`${base}/v1/load`)).json()) as { inFlight: number }
      expect(load.inFlight).toBe(1) // this request alone
      await new Promise((r) => setTimeout(r, 300)) // longer than SLOW_REQUEST_MS
      tab.destroy() // the tab is closed
      await new Promise((r) => setTimeout(r, 200))
      const snap = perf.snapshot()
      expect(snap.slowRequests).toBe(0)
      expect(snap.routes.map((r) => r.route)).not.toContain('GET /v1/dashboard/stream')
      expect(lines.filter((l) => l.includes('slow request'))).toEqual([])
      expect(await registry.metrics()).not.toContain('/v1/dashboard/stream')
    } finally {
      await app.close()
      await pool.end()
      await db.drop()
    }
  })
})
