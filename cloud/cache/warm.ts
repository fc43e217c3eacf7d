import type pg from 'pg'
import type { Logger } from 'pino'
import { gateCounts, overallStats } from '../attendance/queries.js'
import { eventConfig } from '../events/queries.js'
import { gateEventIds, listGates } from '../gates/store.js'
import { activeParticipants } from '../participants/queries.js'
import { DEFAULT_ROSTER_LIMIT, rosterDelta } from '../roster/delta.js'
import { CACHE_KEYS, CACHE_TTL_MS } from './keys.js'
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
      loader: async () =>
        Promise.all(
          (await gateEventIds(pool)).map(async (eventId) => ({
            key: CACHE_KEYS.roster(eventId, 0, DEFAULT_ROSTER_LIMIT),
            value: await rosterDelta(pool, eventId, 0, DEFAULT_ROSTER_LIMIT),
          })),
        ),
      opts: { ttlMs: CACHE_TTL_MS.roster, tags: [ROSTER_TAG] },
    },
    {
      loader: async () => [{ key: CACHE_KEYS.gateCounts(midnight), value: await gateCounts(pool, midnight) }],
      opts: { ttlMs: CACHE_TTL_MS.stats, tags: [STATS_TAG] },
    },
    {
      // the seed's critical keys
      loader: async () => [
        { key: CACHE_KEYS.statsOverall, value: await overallStats(pool) },
        { key: CACHE_KEYS.activeGates, value: { gates: await listGates(pool) } },
        { key: CACHE_KEYS.eventConfig, value: await eventConfig(pool) },
      ],
      opts: { ttlMs: CACHE_TTL_MS.stats, tags: [STATS_TAG, GATES_TAG, EVENTS_TAG] },
    },
    {
      // the active roster, most recently changed first, as far as L1 has room: one query
      // (a token held in several events is left to the look-up, which says so)
      loader: async () => {
        const rows = await activeParticipants(pool, maxTokens)
        const held = new Map<string, number>()
        for (const row of rows) held.set(row.token, (held.get(row.token) ?? 0) + 1)
        return rows
          .filter((row) => held.get(row.token) === 1)
          .map((row) => ({ key: CACHE_KEYS.token(row.token), value: row }))
      },
      opts: { ttlMs: CACHE_TTL_MS.token, tags: [ROSTER_TAG] },
    },
  ])
  log.info({ keys: warmed, ms: Date.now() - t0 }, 'cache warmed')
}
