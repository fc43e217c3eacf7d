import { randomUUID } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import type pg from 'pg'
import type { MetricsRow } from './history.js'
import { type FleetStateStore, type GateFleetState, newer } from './view.js'

/** a node's view of a gate this much older than the newest view of it is dropped */
const STALE_VIEW_MS = 86_400_000

/**
 * Fleet state in one Redis hash (a field per gate and node): every node writes the gates it hears
 * from (its share of the shared subscription), any node reads the whole fleet. One key: in a Cluster it lives
 * on one slot, which a fleet of ten thousand gates fits easily.
 */
export class RedisFleetStore implements FleetStateStore {
  private readonly node = randomUUID()

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly key = 'gc:fleet',
  ) {}

  /** One field per gate and node: a node never overwrites what another node knows better. */
  async save(view: GateFleetState): Promise<void> {
    await this.redis.hset(this.key, `${view.gateId}@${this.node}`, JSON.stringify(view))
  }

  /**
   * Every node's view, the most recent per gate (see `newer`). Views a day older than the best of
   * their gate are removed: they are left by nodes that have stopped (each run of a node writes
   * fields of its own), and would otherwise pile up with every restart. So are the views `keep`
   * refuses (a session far ahead of the clock, written by a node that believed it: it would win
   * over every real view of the gate, for good).
   */
  async all(keep: (g: GateFleetState) => boolean = () => true): Promise<GateFleetState[]> {
    const fields = await this.redis.hgetall(this.key)
    const best = new Map<string, GateFleetState>()
    const views: Array<[string, GateFleetState]> = []
    const refused: string[] = []
    for (const [field, json] of Object.entries(fields)) {
      let view: GateFleetState
      try {
        view = JSON.parse(json) as GateFleetState
      } catch {
        continue // a value this code did not write
      }
      if (!keep(view)) {
        refused.push(field)
        continue
      }
      views.push([field, view])
      const have = best.get(view.gateId)
      if (!have || newer(view, have)) best.set(view.gateId, view)
    }
    const old = views
      .filter(([, view]) => (best.get(view.gateId)?.lastSeenAt ?? 0) - (view.lastSeenAt ?? 0) > STALE_VIEW_MS)
      .map(([field]) => field)
      .concat(refused)
    if (old.length > 0) await this.redis.hdel(this.key, ...old)
    return [...best.values()]
  }
}

/**
 * Metrics history: one INSERT per batch (a JSON parameter, nothing interpolated). The session is a
 * bigint, like the column (a gate's session is at least its clock in seconds: past 2^31 in 2038).
 */
export function postgresHistory(pool: pg.Pool): (rows: MetricsRow[]) => Promise<void> {
  return async (rows) => {
    await pool.query(
      `INSERT INTO gate_metrics (gate_id, ts, session, seq, metrics)
       SELECT "gateId", to_timestamp(ts / 1000.0), session, seq, metrics
         FROM json_to_recordset($1::json) AS t("gateId" text, ts float8, session bigint, seq bigint, metrics jsonb)`,
      [JSON.stringify(rows)],
    )
  }
}

/** A gate's last minutes, column-wise (what the dashboard's charts draw). */
export interface GateHistory {
  gateId: string
  ts: number[]
  advertsPerS: Array<number | null>
  pending: Array<number | null>
  temperatureC: Array<number | null>
  cpuPercent: Array<number | null>
  decisionsPerMin: Array<number | null>
}

/**
 * A gate's last minutes from the history, column-wise for the dashboard's charts: adverts/s,
 * pending buffer, temperature, CPU, and decisions per minute (from the counters' differences; a
 * counter that went down, after a restart, counts from zero).
 */
export function postgresHistoryReader(
  pool: pg.Pool,
): (gateId: string, minutes: number) => Promise<GateHistory> {
  return async (gateId, minutes) => {
    const result = await pool.query<{
      ts: number
      adverts: number | null
      pending: number | null
      temp: number | null
      cpu: number | null
      decisions: number | null
    }>(
      `SELECT extract(epoch FROM ts) * 1000 AS ts,
              (metrics->>'adverts_per_s')::float8 AS adverts,
              (metrics->>'buffer_pending')::float8 AS pending,
              (metrics->>'temperature_c')::float8 AS temp,
              (metrics->>'cpu_percent')::float8 AS cpu,
              (metrics->>'decisions_admit_total')::float8 + (metrics->>'decisions_deny_total')::float8 AS decisions
         FROM gate_metrics
        WHERE gate_id = $1 AND ts >= now() - make_interval(mins => $2)
        ORDER BY ts
        LIMIT 20000`,
      [gateId, minutes],
    )
    const history: GateHistory = {
      gateId,
      ts: [],
      advertsPerS: [],
      pending: [],
      temperatureC: [],
      cpuPercent: [],
      decisionsPerMin: [],
    }
    let prev: { ts: number; decisions: number | null } | null = null
    for (const row of result.rows) {
      const ts = Number(row.ts)
      history.ts.push(ts)
      history.advertsPerS.push(row.adverts)
      history.pending.push(row.pending)
      history.temperatureC.push(row.temp)
      history.cpuPercent.push(row.cpu)
      let rate: number | null = null
      if (prev && prev.decisions !== null && row.decisions !== null && ts > prev.ts) {
        const made = row.decisions >= prev.decisions ? row.decisions - prev.decisions : row.decisions
        rate = Math.round((made * 60_000) / (ts - prev.ts))
      }
      history.decisionsPerMin.push(rate)
      prev = { ts, decisions: row.decisions }
    }
    return history
  }
}
