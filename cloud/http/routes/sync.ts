import type { FastifyInstance } from 'fastify'
import type { GateIdentity } from '../../gates/store.js'
import { createIngestCounters } from '../../ingest/counters.js'
import { ingestBatch } from '../../ingest/ingest.js'
import { gateRouteOptions } from '../plugins/app/gate-auth.js'

/** Options of the sync route. */
export interface SyncRouteOptions {
  /** the server clock, ms (injectable for tests) */
  now: () => number
}

/**
 * POST /v1/sync/checkins: a gate's batch, stored once (a resend counts as duplicates), answered
 * with what the cloud now holds; 422 when every record was refused.
 */
export async function syncRoutes(app: FastifyInstance, opts: SyncRouteOptions): Promise<void> {
  const { config, pool, perf, rosterIndex } = app
  const counters = createIngestCounters(app.registry, () => rosterIndex.size)
  app.post('/v1/sync/checkins', gateRouteOptions(app), async (req, reply) => {
    const { gateId, eventId } = req.gate as GateIdentity
    const result = await perf.time('ingest.batch', () =>
      ingestBatch(pool, gateId, req.body, opts.now(), config, { eventId, roster: rosterIndex, counters }),
    )
    app.reads?.noteWrite(gateId)
    if (result.stored.length === 0 && result.rejected.length > 0) return reply.status(422).send(result)
    return result
  })
}
