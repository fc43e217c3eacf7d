import type { FastifyInstance, FastifyRequest } from 'fastify'
import type pg from 'pg'
import { z } from 'zod'
import { GateError } from '../../shared/errors.js'
import { EVENTS_TAG, GATES_TAG, ROSTER_TAG, STATS_TAG } from '../cache/tags.js'
import type { TieredCache } from '../cache/tiered-cache.js'
import type { ReadRouter } from '../db/replicas.js'
import { listGates } from '../gates/store.js'
import type { PerfMonitor } from '../monitor/perf.js'

const isoOrMs = z
  .union([z.coerce.number().int().nonnegative(), z.string().datetime({ offset: true })])
  .transform((v) => new Date(v))

// schemas are built once: building a zod schema (and its compiled fast path) per request costs
// more than the look-up it guards
const ParticipantParams = z.object({ id: z.string().min(1).max(128) })
// a page's `next`: the last row's time in microseconds and its id, so that rows sharing a time are
// neither skipped nor repeated across pages; a plain time (ISO or ms) still means "before it"
const NIL_UUID = '00000000-0000-0000-0000-000000000000'
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
const SearchQuery = z.object({
  q: z.string().min(1).max(200),
  limit: z.coerce.number().int().min(1).max(200).default(20),
})
const IncidentsQuery = z.object({
  kind: z
    .enum(['double_entry', 'clock_skew', 'late_upload', 'wrong_event', 'unknown_participant', 'id_conflict'])
    .optional(),
  open: z.enum(['true', 'false']).default('true'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
})

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value)
  if (!r.success)
    throw new GateError(
      'E_INPUT',
      r.error.issues.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`).join('; '),
    )
  return r.data
}

/** Dashboards poll the counts: a few seconds of staleness saves the database a query per poll. */
export const STATS_TTL_MS = 5_000
/** token look-ups: any participant change drops them at once (NOTIFY), so they can live long */
export const TOKEN_TTL_MS = 300_000

/** The seed's critical keys: overall figures of today (UTC), the gates, the event configuration. */
export const CRITICAL_KEYS = {
  statsOverall: 'stats:overall',
  activeGates: 'active_gates',
  eventConfig: 'event_config',
}

export async function overallStats(pool: Queryable): Promise<Record<string, unknown>> {
  const r = await pool.query<{ checkins: string; admits: string; gates: string; open_incidents: string }>(
    `SELECT count(*) AS checkins, count(*) FILTER (WHERE decision = 'admit') AS admits, count(DISTINCT gate_id) AS gates,
            (SELECT count(*) FROM incidents WHERE resolved_at IS NULL) AS open_incidents
       FROM attendance_records WHERE ts >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`,
    [],
  )
  const x = r.rows[0]
  return {
    since: `${new Date().toISOString().slice(0, 10)}T00:00:00.000Z`,
    checkins: Number(x?.checkins ?? 0),
    admits: Number(x?.admits ?? 0),
    gatesSeen: Number(x?.gates ?? 0),
    openIncidents: Number(x?.open_incidents ?? 0),
  }
}

export async function eventConfig(pool: Queryable): Promise<Record<string, unknown>> {
  const r = await pool.query('SELECT id, name, created_at AS "createdAt" FROM events ORDER BY id', [])
  return { events: r.rows }
}

/** The primary pool or the read router: anything that runs a parameterised query. */
export interface Queryable {
  query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>>
}

export async function gateCounts(
  pool: Queryable,
  since: Date,
): Promise<{ since: string; gates: Array<{ gateId: string; count: number; admits: number }> }> {
  const r = await pool.query<{ gate_id: string; n: string; admits: string }>(
    `SELECT gate_id, count(*) AS n, count(*) FILTER (WHERE decision = 'admit') AS admits
       FROM attendance_records WHERE ts >= $1 GROUP BY gate_id ORDER BY gate_id`,
    [since],
  )
  return {
    since: since.toISOString(),
    gates: r.rows.map((x) => ({ gateId: x.gate_id, count: Number(x.n), admits: Number(x.admits) })),
  }
}

export async function participantByToken(
  pool: Queryable,
  token: string,
): Promise<Record<string, unknown> | null> {
  const r = await pool.query(
    `SELECT id, token, status, name, email, updated_at AS "updatedAt" FROM participants WHERE token = $1 AND status = 'active'`,
    [token],
  )
  return (r.rows[0] as Record<string, unknown> | undefined) ?? null
}

/**
 * The query API for ops and analytics: one endpoint per critical query of the seed, plus incidents.
 * Every query is parameterised and uses the indexes of the schema (see `gate-cloud analyze`).
 */
export async function queryRoutes(
  app: FastifyInstance,
  opts: {
    pool: pg.Pool
    opsAuth: (req: FastifyRequest) => Promise<void>
    cache: TieredCache
    perf: PerfMonitor
    /** analytics reads on replicas (READ_REPLICA_URLS); the primary when absent */
    reads?: ReadRouter
  },
): Promise<void> {
  const { cache, perf } = opts
  const pool: Queryable = opts.reads ?? opts.pool
  // every query is named and timed (/v1/perf, db_query_duration_seconds, slow-query log), and read
  // from a replica when there is an eligible one
  const db = {
    query: <R extends pg.QueryResultRow>(
      name: string,
      text: string,
      values: unknown[],
      about: { gateId?: string } = {},
    ) =>
      perf.time(name, () =>
        opts.reads ? opts.reads.query<R>(text, values, about) : opts.pool.query<R>(text, values),
      ),
  }
  // the hook is encapsulated in this plugin: it guards exactly the routes below
  app.addHook('onRequest', opts.opsAuth)

  // 1. a participant's check-ins, newest first, paged by keyset (before = the last ts of the previous page)
  app.get('/v1/query/participants/:id/checkins', async (req) => {
    const { id } = parse(ParticipantParams, req.params)
    const q = parse(CheckinsQuery, req.query)
    const r = await db.query<{ ts_us: string } & Record<string, unknown>>(
      'query.participant_checkins',
      `SELECT id, ts, gate_id AS "gateId", method, decision, reason, rssi, received_at AS "receivedAt",
              (extract(epoch FROM ts) * 1000000)::bigint AS ts_us
         FROM attendance_records
        WHERE participant_id = $1
          AND ($2::bigint IS NULL OR (ts, id) < ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $4::uuid))
        ORDER BY ts DESC, id DESC LIMIT $3`,
      [id, q.before?.us ?? null, q.limit, q.before?.id ?? NIL_UUID],
    )
    const rows = r.rows.map(({ ts_us: _, ...row }) => row)
    const last = r.rows[r.rows.length - 1]
    return { checkins: rows, next: r.rows.length === q.limit && last ? `${last.ts_us}:${last['id']}` : null }
  })

  // 2. a gate's count since a time (cached a few seconds: dashboards poll it)
  app.get('/v1/query/gates/:id/count', async (req) => {
    const { id } = parse(GateParams, req.params)
    const q = parse(GateCountQuery, req.query)
    const count = await cache.getOrLoad(
      `stats:gate:${id}:${q.since.getTime()}:${q.decision ?? '*'}`,
      async () => {
        const r = await db.query<{ n: string }>(
          'query.gate_count',
          `SELECT count(*) AS n FROM attendance_records WHERE gate_id = $1 AND ts >= $2 AND ($3::text IS NULL OR decision = $3)`,
          [id, q.since, q.decision ?? null],
          { gateId: id },
        )
        return Number(r.rows[0]?.n ?? 0)
      },
      { ttlMs: STATS_TTL_MS, tags: [STATS_TAG] },
    )
    return { gateId: id, since: q.since.toISOString(), count }
  })

  // 4. counts per gate since a time
  app.get('/v1/query/gates/counts', async (req) => {
    const q = parse(SinceQuery, req.query)
    return cache.getOrLoad(
      `stats:gates:${q.since.getTime()}`,
      () => perf.time('query.gate_counts', () => gateCounts(pool, q.since)),
      {
        ttlMs: STATS_TTL_MS,
        tags: [STATS_TAG],
      },
    )
  })

  // 3. the active participant holding a token; an unknown token is cached as such (negative caching)
  app.get('/v1/query/tokens/:token', async (req) => {
    const { token } = parse(TokenParams, req.params)
    const t = token.toLowerCase()
    const row = await cache.getOrLoad(
      `tok:${t}`,
      // from the primary: a reload after a change (NOTIFY) must not read a replica that has not replayed it
      () => perf.time('query.token', () => participantByToken(opts.pool, t)),
      {
        ttlMs: TOKEN_TTL_MS,
        tags: [ROSTER_TAG],
      },
    )
    if (!row) throw new GateError('E_NOT_FOUND', `no active participant holds token ${token}`)
    return row
  })

  // the seed's critical keys, cached: today's overall figures, the gates, the event configuration
  app.get('/v1/query/stats', async () =>
    cache.getOrLoad(
      CRITICAL_KEYS.statsOverall,
      () => perf.time('query.stats_overall', () => overallStats(pool)),
      {
        ttlMs: STATS_TTL_MS,
        tags: [STATS_TAG],
      },
    ),
  )
  app.get('/v1/query/gates', async () =>
    cache.getOrLoad(
      CRITICAL_KEYS.activeGates,
      async () => ({ gates: await perf.time('query.gates', () => listGates(opts.pool)) }),
      { ttlMs: 10_000, tags: [GATES_TAG] },
    ),
  )
  app.get('/v1/query/events', async () =>
    cache.getOrLoad(CRITICAL_KEYS.eventConfig, () => perf.time('query.events', () => eventConfig(pool)), {
      ttlMs: 60_000,
      tags: [EVENTS_TAG],
    }),
  )

  // full-text participant search (GIN index on name and email)
  app.get('/v1/query/participants', async (req) => {
    const q = parse(SearchQuery, req.query)
    const r = await db.query(
      'query.participant_search',
      `SELECT id, token, status, name, email,
              ts_rank(to_tsvector('english', coalesce(name, '') || ' ' || coalesce(email, '')), query) AS rank
         FROM participants, websearch_to_tsquery('english', $1) AS query
        WHERE to_tsvector('english', coalesce(name, '') || ' ' || coalesce(email, '')) @@ query
        ORDER BY rank DESC, id LIMIT $2`,
      [q.q, q.limit],
    )
    return { participants: r.rows }
  })

  app.get('/v1/incidents', async (req) => {
    const q = parse(IncidentsQuery, req.query)
    const r = await db.query(
      'query.incidents',
      `SELECT id, kind, gate_id AS "gateId", participant_id AS "participantId", record_id AS "recordId", record_ts AS "recordTs",
              other_gate_id AS "otherGateId", other_record_id AS "otherRecordId", detail, created_at AS "createdAt"
         FROM incidents WHERE ($1::text IS NULL OR kind = $1) AND ($2::boolean = false OR resolved_at IS NULL)
        ORDER BY created_at DESC, id DESC LIMIT $3`,
      [q.kind ?? null, q.open === 'true', q.limit],
    )
    return { incidents: r.rows }
  })
}
