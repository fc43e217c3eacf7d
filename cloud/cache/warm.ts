import type pg from 'pg'
import type { Logger } from 'pino'
import { gateCounts, participantByToken, STATS_TTL_MS } from '../http/query-routes.js'
import { rosterDelta } from '../http/roster.js'
import { ROSTER_TAG, STATS_TAG } from './tags.js'
import type { TieredCache } from './tiered-cache.js'

/**
 * Warm-up at start: what the first minutes of an event ask for, so the first gates and dashboards
 * do not all miss at once: the first roster page (every gate starts there), the counts per gate
 * since midnight UTC (the dashboard), and the token look-ups of the most recently changed active
 * participants.
 */
export async function warmCache(
  cache: TieredCache,
  pool: pg.Pool,
  log: Logger,
  tokens = 1_000,
): Promise<void> {
  const t0 = Date.now()
  const midnight = new Date(new Date().toISOString().slice(0, 10))
  const recent = await pool.query<{ token: string }>(
    `SELECT token FROM participants WHERE status = 'active' ORDER BY updated_at DESC LIMIT $1`,
    [tokens],
  )
  const n = await cache.warm([
    {
      key: 'roster:0:5000',
      loader: () => rosterDelta(pool, 0, 5000),
      opts: { ttlMs: 60_000, tags: [ROSTER_TAG] },
    },
    {
      key: `stats:gates:${midnight.getTime()}`,
      loader: () => gateCounts(pool, midnight),
      opts: { ttlMs: STATS_TTL_MS, tags: [STATS_TAG] },
    },
    ...recent.rows.map((r) => ({
      key: `tok:${r.token}`,
      loader: () => participantByToken(pool, r.token),
      opts: { ttlMs: 300_000, tags: [ROSTER_TAG] },
    })),
  ])
  log.info({ keys: n, ms: Date.now() - t0 }, 'cache warmed')
}
