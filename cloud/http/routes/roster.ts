import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import type { RosterDelta } from '../../../shared/sync.js'
import { CACHE_KEYS, CACHE_TTL_MS } from '../../cache/keys.js'
import { ROSTER_TAG } from '../../cache/tags.js'
import type { GateIdentity } from '../../gates/store.js'
import { DEFAULT_ROSTER_LIMIT, rosterDelta } from '../../roster/delta.js'
import { parseInput } from '../input.js'
import { gateRouteOptions } from '../plugins/app/gate-auth.js'

const RosterQuery = z.object({
  since: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(10_000).default(DEFAULT_ROSTER_LIMIT),
  /** "access": each change with the participant's category and tags */
  with: z.enum(['access']).optional(),
})

/**
 * GET /v1/roster?since=CURSOR[&with=access]: the changes of the gate's event after its cursor, oldest first, from
 * the cache (any participant change drops it); 304 for a gate already up to date (ETag).
 */
export async function rosterRoutes(app: FastifyInstance): Promise<void> {
  const { cache, perf, pool } = app
  app.get('/v1/roster', gateRouteOptions(app), async (req, reply) => {
    const { eventId } = req.gate as GateIdentity
    const { since, limit, with: withFields } = parseInput(RosterQuery, req.query)
    const access = withFields === 'access'
    const delta = (await cache.getOrLoad(
      CACHE_KEYS.roster(eventId, since, limit, access),
      () => perf.time('roster.delta', () => rosterDelta(pool, eventId, since, limit, access)),
      { ttlMs: CACHE_TTL_MS.roster, tags: [ROSTER_TAG] },
    )) as RosterDelta
    const etag = `"roster-${delta.cursor}"`
    reply.header('ETag', etag).header('Cache-Control', 'no-cache')
    if (delta.changes.length === 0 && req.headers['if-none-match'] === etag) return reply.status(304).send()
    return delta
  })
}
