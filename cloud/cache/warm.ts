import type pg from 'pg'
import type { Logger } from 'pino'
import { listGates } from '../gates/store.js'
import {
  CRITICAL_KEYS,
  eventConfig,
  gateCounts,
  overallStats,
  STATS_TTL_MS,
  TOKEN_TTL_MS,
} from '../http/query-routes.js'
import { rosterDelta } from '../http/roster.js'
import { EVENTS_TAG, GATES_TAG, ROSTER_TAG, STATS_TAG } from './tags.js'
import type { TieredCache } from './tiered-cache.js'

/**
 * Warm-up at start: what the first minutes of an event ask for, so the first gates and dashboards
 * do not all miss at once: the seed's critical keys (stats:overall, active_gates, event_config),
 * the first roster page (every gate starts there), the counts per gate
 * since midnight UTC (the dashboard), and the token look-ups of the active participants (as many
 * as L1 holds, most recently changed first).
 */
export async function warmCache(
  cache: TieredCache,
  pool: pg.Pool,
  log: Logger,
  maxTokens: number,
): Promise<void> {
  const t0 = Date.now()
  const midnight = new Date(new Date().toISOString().slice(0, 10))
  const warmed = await cache.warm([
    {
      // the first page of every event's roster (what a gate starting from scratch asks for)
      loader: async () => {
        const events = await pool.query<{ event_id: string | null }>('SELECT DISTINCT event_id FROM gates')
        return Promise.all(
          events.rows.map(async ({ event_id }) => ({
            key: `roster:${event_id ?? ''}:0:5000`,
            value: await rosterDelta(pool, event_id, 0, 5000),
          })),
        )
      },
      opts: { ttlMs: 60_000, tags: [ROSTER_TAG] },
    },
    {
      loader: async () => [
        { key: `stats:gates:${midnight.getTime()}`, value: await gateCounts(pool, midnight) },
      ],
      opts: { ttlMs: STATS_TTL_MS, tags: [STATS_TAG] },
    },
    {
      // the seed's critical keys
      loader: async () => [
        { key: CRITICAL_KEYS.statsOverall, value: await overallStats(pool) },
        { key: CRITICAL_KEYS.activeGates, value: { gates: await listGates(pool) } },
        { key: CRITICAL_KEYS.eventConfig, value: await eventConfig(pool) },
      ],
      opts: { ttlMs: STATS_TTL_MS, tags: [STATS_TAG, GATES_TAG, EVENTS_TAG] },
    },
    {
      // the active roster, most recently changed first, as far as L1 has room: one query
      loader: async () =>
        (
          await pool.query(
            `SELECT id, token, status, name, email, updated_at AS "updatedAt" FROM participants
              WHERE status = 'active' ORDER BY updated_at DESC LIMIT $1`,
            [maxTokens],
          )
        ).rows.map((row: { token: string }) => ({ key: `tok:${row.token}`, value: row })),
      opts: { ttlMs: TOKEN_TTL_MS, tags: [ROSTER_TAG] },
    },
  ])
  log.info({ keys: warmed, ms: Date.now() - t0 }, 'cache warmed')
}
