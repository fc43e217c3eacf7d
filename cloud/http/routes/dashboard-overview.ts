import type { FastifyInstance } from 'fastify'
import type { FleetMonitor } from '../../fleet/monitor.js'
import { openIncidents } from '../../incidents/queries.js'
import type { AlertsStatus } from './perf.js'

/**
 * What the dashboard's overview shows of the cloud, every few seconds: this node's load, its
 * busiest routes and slowest queries, the pool, the cache, the system, the replicas, the fleet's
 * messages, the router's view of the nodes (ROUTER_URL), alerts and the open incidents.
 */
export function cloudOverview(
  app: FastifyInstance,
  opts: { fleet: FleetMonitor | null; alertsStatus?: AlertsStatus },
): () => Promise<Record<string, unknown>> {
  const { perf, pool, cache, reads } = app
  // open incidents: asked of Postgres at most every 5 s, however many dashboards are open
  const incidents = sharedFor(5_000, () => perf.time('dashboard.incidents', () => openIncidents(pool)))
  const routerStatus = routerStatusOf(app.config.routerUrl)
  return async () => {
    const snap = perf.snapshot()
    const byCount = [...snap.routes].sort((a, b) => b.count - a.count).slice(0, 8)
    const byP99 = [...snap.db].sort((a, b) => b.p99Ms - a.p99Ms).slice(0, 8)
    return {
      generatedAt: snap.generatedAt,
      windowSeconds: snap.windowSeconds,
      node: app.nodeLoad(),
      requests: snap.requests,
      routes: byCount,
      db: snap.dbOverall,
      queries: byP99,
      pool: { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount },
      cache: { ...snap.cache, circuit: cache.circuitState, l1Entries: cache.l1Size },
      system: snap.system,
      replicas: reads ? { status: reads.status(), primaryReads: reads.primaryReads } : null,
      fleetMessages: opts.fleet?.stats ?? null,
      router: await routerStatus(),
      ...(opts.alertsStatus?.() ?? {}),
      incidents: await incidents().catch((err: Error) => ({ error: err.message })),
    }
  }
}

/** The router's view of the nodes (ROUTER_URL), fetched at most every 5 s; null without a router. */
function routerStatusOf(routerUrl: string | undefined): () => Promise<unknown> {
  if (!routerUrl) return () => Promise.resolve(null)
  return sharedFor(5_000, () =>
    fetch(new URL('/router/status', routerUrl), { signal: AbortSignal.timeout(1_000) })
      .then(
        (r): Promise<unknown> =>
          r.ok ? r.json() : Promise.resolve({ error: `router answered ${r.status}` }),
      )
      .catch((err: Error) => ({ error: `router unreachable: ${err.message}` })),
  )
}

/**
 * `load`'s answer shared by every caller for `ms` after it was asked (one query however many
 * dashboards poll); a failed answer is not kept, so the next caller asks again.
 */
function sharedFor<T>(ms: number, load: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | null = null
  return () => {
    if (!last || Date.now() - last.at > ms) {
      const entry = { at: Date.now(), value: load() }
      entry.value.catch(() => {
        if (last === entry) last = null
      })
      last = entry
    }
    return last.value
  }
}
