import type { FastifyInstance } from 'fastify'
import { PlanAdvisor, ruleSuggestions, type Suggestion } from '../../monitor/suggestions.js'
import { requireAccess } from '../plugins/app/people-auth.js'

/** Alerts firing, recent alert events and the autoscaler's last decision (the server's). */
export type AlertsStatus = () => Record<string, unknown>

/** /v1/perf: the last minutes at a glance; /v1/perf/suggestions: what to do about them. Ops token. */
export async function perfRoutes(app: FastifyInstance, opts: { alertsStatus?: AlertsStatus }): Promise<void> {
  const { perf, cache, reads } = app
  const advisor = new PlanAdvisor(app.pool)
  const slowQueryMs = app.config.monitor.slowQueryMs
  const extra = () => ({
    cacheLayers: { circuit: cache.circuitState, l1Entries: cache.l1Size },
    replicas: reads ? { status: reads.status(), primaryReads: reads.primaryReads } : null,
    ...(opts.alertsStatus?.() ?? {}),
  })
  requireAccess(app, 'ops')
  app.get('/v1/perf', async () => ({ ...perf.snapshot(), ...extra() }))
  app.get('/v1/alerts', async () => {
    const x = opts.alertsStatus?.() ?? {}
    return { alerts: x['alerts'] ?? null, autoscaler: x['autoscaler'] ?? null }
  })
  app.get('/v1/perf/suggestions', async (req) => {
    const snap = perf.snapshot()
    const out: Suggestion[] = ruleSuggestions(snap, slowQueryMs)
    let plans: string | null = null
    if ((req.query as { plans?: string }).plans !== 'false') {
      try {
        out.push(...(await advisor.suggestions()))
      } catch (err) {
        plans = `query plans unavailable: ${(err as Error).message}`
      }
    }
    const rank = { high: 0, medium: 1, low: 2 } as const
    out.sort((a, b) => rank[a.priority] - rank[b.priority])
    return { generatedAt: snap.generatedAt, windowSeconds: snap.windowSeconds, suggestions: out, plans }
  })
}
