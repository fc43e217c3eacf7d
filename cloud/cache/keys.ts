/**
 * The cache's keys and freshness for what the query API and the gates read, shared by the routes
 * that load them and the warm-up that fills them at start.
 */
export const CACHE_KEYS = {
  /** a page of an event's roster changes after a cursor ('' for gates without an event) */
  roster: (eventId: string | null, since: number, limit: number, access = false) =>
    `roster:${eventId ?? ''}:${since}:${limit}${access ? ':access' : ''}`,
  /** the active participant holding a token (lower case), in one event or in any */
  token: (token: string, eventId: string | null = null) =>
    `tok:${token}${eventId === null ? '' : `@${eventId}`}`,
  /** a gate's count since a time, of one decision or both */
  gateCount: (gateId: string, since: Date, decision: string | null) =>
    `stats:gate:${gateId}:${since.getTime()}:${decision ?? '*'}`,
  /** the counts per gate since a time */
  gateCounts: (since: Date) => `stats:gates:${since.getTime()}`,
  /** the seed's critical keys: overall figures of today (UTC), the gates, the event configuration */
  statsOverall: 'stats:overall',
  activeGates: 'active_gates',
  eventConfig: 'event_config',
} as const

/** How long each kind of entry is fresh, ms. */
export const CACHE_TTL_MS = {
  /** a roster page: any participant change drops it at once (NOTIFY) */
  roster: 60_000,
  /** token look-ups: any participant change drops them at once (NOTIFY), so they can live long */
  token: 300_000,
  /** dashboards poll the counts: a few seconds of staleness saves the database a query per poll */
  stats: 5_000,
  gates: 10_000,
  events: 60_000,
} as const
