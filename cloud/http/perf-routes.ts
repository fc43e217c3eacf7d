import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { PerfMonitor } from '../monitor/perf.js'
import { type PlanAdvisor, ruleSuggestions, type Suggestion } from '../monitor/suggestions.js'

/** /v1/perf: the last minutes at a glance; /v1/perf/suggestions: what to do about them. Ops token. */
export async function perfRoutes(
  app: FastifyInstance,
  opts: {
    perf: PerfMonitor
    advisor: PlanAdvisor
    slowQueryMs: number
    opsAuth: (req: FastifyRequest) => Promise<void>
    extra?: () => Record<string, unknown>
  },
): Promise<void> {
  app.addHook('onRequest', opts.opsAuth)
  app.get('/v1/perf', async () => ({ ...opts.perf.snapshot(), ...(opts.extra?.() ?? {}) }))
  app.get('/v1/alerts', async () => {
    const x = opts.extra?.() ?? {}
    return { alerts: x['alerts'] ?? null, autoscaler: x['autoscaler'] ?? null }
  })
  app.get('/v1/perf/suggestions', async (req) => {
    const snap = opts.perf.snapshot()
    const out: Suggestion[] = ruleSuggestions(snap, opts.slowQueryMs)
    let plans: string | null = null
    if ((req.query as { plans?: string }).plans !== 'false') {
      try {
        out.push(...(await opts.advisor.suggestions()))
      } catch (err) {
        plans = `query plans unavailable: ${(err as Error).message}`
      }
    }
    const rank = { high: 0, medium: 1, low: 2 } as const
    out.sort((a, b) => rank[a.priority] - rank[b.priority])
    return { generatedAt: snap.generatedAt, windowSeconds: snap.windowSeconds, suggestions: out, plans }
  })
}
