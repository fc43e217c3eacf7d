import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { GateError } from '../../../shared/errors.js'
import { visibleEvents } from '../../accounts/principal.js'
import {
  gateCount,
  gateCounts,
  NIL_UUID,
  overallStats,
  participantCheckins,
} from '../../attendance/queries.js'
import { CACHE_KEYS, CACHE_TTL_MS } from '../../cache/keys.js'
import { EVENTS_TAG, GATES_TAG, ROSTER_TAG, STATS_TAG } from '../../cache/tags.js'
import type { Queryable } from '../../db/pool.js'
import { eventConfig } from '../../events/queries.js'
import { listGates } from '../../gates/store.js'
import { INCIDENT_KINDS, INCIDENT_STATES, listIncidents } from '../../incidents/queries.js'
import { participantByToken, searchParticipants } from '../../participants/queries.js'
import { parseInput } from '../input.js'
import { requireAccess } from '../plugins/app/people-auth.js'
import { mustSeeParticipant, onlyEvent } from '../scope.js'

const isoOrMs = z
  .union([z.coerce.number().int().nonnegative(), z.string().datetime({ offset: true })])
  .transform((v) => new Date(v))

// schemas are built once: building a zod schema (and its compiled fast path) per request costs
// more than the look-up it guards
const ParticipantParams = z.object({ id: z.string().min(1).max(128) })
// a page's `next`: the last row's time in microseconds and its id, so that rows sharing a time are
// neither skipped nor repeated across pages; a plain time (ISO or ms) still means "before it"
const pageCursor = z
  .string()
  .regex(/^\d{1,20}:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
  .transform((v) => {
    const [us, id] = v.split(':') as [string, string]
    return { us, id }
  })
const CheckinsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  before: z
    .union([pageCursor, isoOrMs.transform((d) => ({ us: String(d.getTime() * 1000), id: NIL_UUID }))])
    .optional(),
})
const GateParams = z.object({ id: z.string().min(1).max(64) })
const GateCountQuery = z.object({ since: isoOrMs, decision: z.enum(['admit', 'deny']).optional() })
const SinceQuery = z.object({ since: isoOrMs })
const TokenParams = z.object({ token: z.string().regex(/^[0-9a-fA-F]{4,48}$/) })
const TokenQuery = z.object({
  event: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/)
    .optional(),
})
const SearchQuery = z.object({
  q: z.string().min(1).max(200),
  limit: z.coerce.number().int().min(1).max(200).default(20),
  event: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/)
    .optional(),
})
const IncidentsQuery = z.object({
  kind: z.enum(INCIDENT_KINDS).optional(),
  open: z.enum(['true', 'false']).default('true'),
  state: z.enum(INCIDENT_STATES).optional(),
  event: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/)
    .optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
})

/**
 * The query API for ops and analytics: one endpoint per critical query of the seed, plus incidents.
 * Every query is parameterised and uses the indexes of the schema (see `gate-cloud analyze`).
 */
export async function queryRoutes(app: FastifyInstance): Promise<void> {
  const { cache, perf, pool, reads } = app
  // analytics read from a replica when there is an eligible one; reads about a gate stay on the
  // primary for a while after its upload (read your writes)
  const analytics = (about: { gateId?: string } = {}): Queryable =>
    reads ? { query: (text, values) => reads.query(text, values, about) } : pool
  // what each route asks of its caller (people-auth.ts): ops unless the route says otherwise
  requireAccess(app, 'ops')
  const eventRead = { config: { access: 'event-read' as const } }
  const fleetRead = { config: { access: 'fleet-read' as const } }
  const signedIn = { config: { access: 'signed-in' as const } }

  // 1. a participant's check-ins, newest first, paged by keyset (before = the last ts of the previous page)
  app.get('/v1/query/participants/:id/checkins', eventRead, async (req) => {
    const { id } = parseInput(ParticipantParams, req.params, 'query')
    await mustSeeParticipant(pool, req.principal, id)
    const q = parseInput(CheckinsQuery, req.query, 'query')
    return perf.time('query.participant_checkins', () =>
      participantCheckins(analytics(), id, { before: q.before ?? null, limit: q.limit }),
    )
  })

  // 2. a gate's count since a time (cached a few seconds: dashboards poll it)
  app.get('/v1/query/gates/:id/count', fleetRead, async (req) => {
    const { id } = parseInput(GateParams, req.params, 'query')
    const q = parseInput(GateCountQuery, req.query, 'query')
    const decision = q.decision ?? null
    const count = await cache.getOrLoad(
      CACHE_KEYS.gateCount(id, q.since, decision),
      () => perf.time('query.gate_count', () => gateCount(analytics({ gateId: id }), id, q.since, decision)),
      { ttlMs: CACHE_TTL_MS.stats, tags: [STATS_TAG] },
    )
    return { gateId: id, since: q.since.toISOString(), count }
  })

  // 4. counts per gate since a time
  app.get('/v1/query/gates/counts', fleetRead, async (req) => {
    const q = parseInput(SinceQuery, req.query, 'query')
    return cache.getOrLoad(
      CACHE_KEYS.gateCounts(q.since),
      () => perf.time('query.gate_counts', () => gateCounts(analytics(), q.since)),
      { ttlMs: CACHE_TTL_MS.stats, tags: [STATS_TAG] },
    )
  })

  // 3. the active participant holding a token (in ?event= when given: a token is unique within an
  // event); an unknown token is cached as such (negative caching)
  app.get('/v1/query/tokens/:token', async (req) => {
    const { token } = parseInput(TokenParams, req.params, 'query')
    const { event } = parseInput(TokenQuery, req.query, 'query')
    const t = token.toLowerCase()
    const eventId = event ?? null
    const row = await cache.getOrLoad(
      CACHE_KEYS.token(t, eventId),
      // from the primary: a reload after a change (NOTIFY) must not read a replica that has not replayed it
      () => perf.time('query.token', () => participantByToken(pool, t, eventId)),
      { ttlMs: CACHE_TTL_MS.token, tags: [ROSTER_TAG] },
    )
    if (!row) throw new GateError('E_NOT_FOUND', `no active participant holds token ${token}`)
    return row
  })

  // the seed's critical keys, cached: today's overall figures, the gates, the event configuration
  app.get('/v1/query/stats', async () =>
    cache.getOrLoad(
      CACHE_KEYS.statsOverall,
      () => perf.time('query.stats_overall', () => overallStats(analytics())),
      { ttlMs: CACHE_TTL_MS.stats, tags: [STATS_TAG] },
    ),
  )
  app.get('/v1/query/gates', fleetRead, async () =>
    cache.getOrLoad(
      CACHE_KEYS.activeGates,
      async () => ({ gates: await perf.time('query.gates', () => listGates(pool)) }),
      { ttlMs: CACHE_TTL_MS.gates, tags: [GATES_TAG] },
    ),
  )
  // the events the caller sees (an organiser's own)
  app.get('/v1/query/events', signedIn, async (req) => {
    const all = await cache.getOrLoad(
      CACHE_KEYS.eventConfig,
      () => perf.time('query.events', () => eventConfig(analytics())),
      { ttlMs: CACHE_TTL_MS.events, tags: [EVENTS_TAG] },
    )
    const mine = req.principal ? visibleEvents(req.principal) : []
    if (mine === null) return all
    return { events: ((all?.events ?? []) as Array<{ id: string }>).filter((e) => mine.includes(e.id)) }
  })

  // participant search: part of a name or e-mail, accents aside (trigram index), in one event or all
  app.get('/v1/query/participants', eventRead, async (req) => {
    const q = parseInput(SearchQuery, req.query, 'query')
    const eventId = q.event ?? onlyEvent(req.principal)
    return {
      participants: await perf.time('query.participant_search', () =>
        searchParticipants(analytics(), q.q, q.limit, eventId),
      ),
    }
  })

  app.get('/v1/incidents', eventRead, async (req) => {
    const q = parseInput(IncidentsQuery, req.query, 'query')
    // `open=false` is every state, as before states had names
    const state = q.state ?? (q.open === 'true' ? 'open' : 'all')
    const events = req.principal ? visibleEvents(req.principal) : []
    const filter = { kind: q.kind ?? null, state, eventId: q.event ?? null, events, limit: q.limit }
    return { incidents: await perf.time('query.incidents', () => listIncidents(analytics(), filter)) }
  })
}
