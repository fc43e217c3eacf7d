import { randomUUID } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import type pg from 'pg'
import { type FleetStateStore, type GateFleetState, type MetricsRow, newer } from './monitor.js'

/**
 * Fleet state in one Redis hash (field = gate id): every node writes the gates it hears from (its
 * share of the shared subscription), any node reads the whole fleet. One key: in a Cluster it lives
 * on one slot, which a fleet of ten thousand gates fits easily.
 */
export class RedisFleetStore implements FleetStateStore {
  private readonly node = randomUUID()

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly key = 'gc:fleet',
  ) {}

  /** One field per gate and node: a node never overwrites what another node knows better. */
  async save(g: GateFleetState): Promise<void> {
    await this.redis.hset(this.key, `${g.gateId}@${this.node}`, JSON.stringify(g))
  }

  /** Every node's view, the most recent per gate (see `newer`). */
  async all(): Promise<GateFleetState[]> {
    const h = await this.redis.hgetall(this.key)
    const best = new Map<string, GateFleetState>()
    for (const v of Object.values(h)) {
      let g: GateFleetState
      try {
        g = JSON.parse(v) as GateFleetState
      } catch {
        continue // a value this code did not write
      }
      const have = best.get(g.gateId)
      if (!have || newer(g, have)) best.set(g.gateId, g)
    }
    return [...best.values()]
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
