import type { Cluster, Redis } from 'ioredis'
import type pg from 'pg'
import type { FleetStateStore, GateFleetState, MetricsRow } from './monitor.js'

/**
 * Fleet state in one Redis hash (field = gate id): every node writes the gates it hears from (its
 * share of the shared subscription), any node reads the whole fleet. One key: in a Cluster it lives
 * on one slot, which a fleet of ten thousand gates fits easily.
 */
export class RedisFleetStore implements FleetStateStore {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly key = 'gc:fleet',
  ) {}

  async save(g: GateFleetState): Promise<void> {
    await this.redis.hset(this.key, g.gateId, JSON.stringify(g))
  }

  async all(): Promise<GateFleetState[]> {
    const h = await this.redis.hgetall(this.key)
    const out: GateFleetState[] = []
    for (const v of Object.values(h)) {
      try {
        out.push(JSON.parse(v) as GateFleetState)
      } catch {
        // a value this code did not write: skipped
      }
    }
    return out
  }
}

/** Metrics history: one INSERT per batch (a JSON parameter, nothing interpolated). */
export function postgresHistory(pool: pg.Pool): (rows: MetricsRow[]) => Promise<void> {
  return async (rows) => {
    await pool.query(
      `INSERT INTO gate_metrics (gate_id, ts, session, seq, metrics)
       SELECT "gateId", to_timestamp(ts / 1000.0), session, seq, metrics
         FROM json_to_recordset($1::json) AS t("gateId" text, ts float8, session int, seq bigint, metrics jsonb)`,
      [JSON.stringify(rows)],
    )
  }
}
