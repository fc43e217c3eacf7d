import type { Clock } from '../clock.js'
import type { Claims, SeqRange } from './claims.js'
import type { Db } from './db.js'
import type { RowCounts } from './row-counts.js'

/** rows looked at per prune slice: the event loop is held for one such slice at a time */
const PRUNE_LIMIT = 5_000

/**
 * The outbox's upkeep: old synced rows pruned, rows an older build left in flight returned, and
 * refused rows sent again on a technician's word.
 */
export class OutboxMaintenance {
  constructor(
    private readonly db: Db,
    private readonly counts: RowCounts,
    private readonly claims: Claims,
    private readonly clock: Clock,
  ) {}

  /**
   * Return rows an older build left marked in flight (state 1) to pending. Claims live in memory
   * now (a crash voids them without a write), so this only matters for a file from before. Returns how many.
   */
  recoverInFlight(): number {
    const changed = this.db.prepare('UPDATE checkins SET state = 0 WHERE state = 1').run().changes
    this.counts.move('inFlight', 'pending', changed)
    return changed
  }

  /**
   * Delete synced rows older than `days` among the `limit` rows after `from` (seq_no order, which is
   * time order): one bounded slice, so that the event loop is never held by a scan of the whole
   * table (a gate with a million rows pending would be scanned for nothing). `next` is where the
   * following slice starts, null once a slice reached rows younger than the cutoff or the end.
   * Pending, in-flight and refused rows are never deleted.
   */
  prune(
    days: number,
    opts: { from?: number; limit?: number } = {},
  ): { deleted: number; next: number | null } {
    const cutoff = this.clock.now() - days * 86_400_000
    const from = opts.from ?? 0
    const limit = opts.limit ?? PRUNE_LIMIT
    const slice = this.db
      .prepare(
        `SELECT max(seq_no) AS last, count(*) AS looked, coalesce(sum(wall_ms >= ?), 0) AS young
           FROM (SELECT seq_no, wall_ms FROM checkins WHERE seq_no > ? ORDER BY seq_no LIMIT ?)`,
      )
      .get(cutoff, from, limit) as { last: number | null; looked: number; young: number }
    if (slice.last === null) return { deleted: 0, next: null }
    // the newest row always stays: SQLite gives a new row max(seq_no) + 1, and a seq_no must never
    // be reused at or below the syncer's claim cursor
    const deleted = this.db
      .prepare(
        `DELETE FROM checkins WHERE seq_no > ? AND seq_no <= ? AND state = 2 AND sync_error IS NULL AND wall_ms < ?
            AND seq_no < (SELECT max(seq_no) FROM checkins)`,
      )
      .run(from, slice.last, cutoff).changes
    this.counts.synced -= deleted
    return { deleted, next: slice.looked < limit || slice.young > 0 ? null : slice.last }
  }

  /**
   * Send the rows the cloud refused again (a technician's `gatectl sync resend-refused`, once the
   * cloud or the agent is fixed): they become pending and are claimed before newer rows. Returns how many.
   */
  resendRefused(): number {
    // runs of consecutive seq_no that are all refused rows: each run is claimed again as a range,
    // and holds no row of a claim in flight or waiting to be resent (those are pending, not refused)
    const runs = this.db
      .prepare(
        `SELECT min(seq_no) AS first, max(seq_no) AS last FROM (
           SELECT seq_no, seq_no - row_number() OVER (ORDER BY seq_no) AS run
             FROM checkins WHERE state = 2 AND sync_error IS NOT NULL)
          GROUP BY run`,
      )
      .all() as SeqRange[]
    if (runs.length === 0) return 0
    const changed = markRefusedPending(this.db)
    this.counts.move('synced', 'pending', changed)
    this.claims.requeue(runs)
    return changed
  }
}

/**
 * The rows the cloud refused become pending again (sent at the next claim of their range, or at the
 * next start when the agent is not running). Returns how many.
 */
export function markRefusedPending(db: Db): number {
  return db
    .prepare(
      'UPDATE checkins SET state = 0, synced_at = NULL, sync_error = NULL WHERE state = 2 AND sync_error IS NOT NULL',
    )
    .run().changes
}
