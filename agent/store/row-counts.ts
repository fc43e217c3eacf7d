import type { Db } from './db.js'
import { type OutboxCounts, outboxCounts } from './outbox-queries.js'

/** A sync state whose rows are counted. */
export type CountedState = 'pending' | 'inFlight' | 'synced'

/**
 * The outbox's rows by sync state, counted once at start and then kept from each statement's
 * changes: counting a million rows would hold decisions up.
 */
export class RowCounts {
  pending: number
  inFlight: number
  synced: number
  /** the oldest row not yet synced (cheap: the partial index holds only unsynced rows) */
  private readonly oldestStmt

  constructor(db: Db) {
    this.oldestStmt = db.prepare('SELECT wall_ms FROM checkins WHERE state < 2 ORDER BY seq_no LIMIT 1')
    const counted = outboxCounts(db)
    this.pending = counted.pending
    this.inFlight = counted.inFlight
    this.synced = counted.synced
  }

  /** `count` rows went from one state to another. */
  move(from: CountedState, to: CountedState, count: number): void {
    this[from] -= count
    this[to] += count
  }

  /** The counts, and the wall time of the oldest row not yet synced. */
  snapshot(): OutboxCounts {
    const oldest = this.oldestStmt.get() as { wall_ms: number } | undefined
    return {
      pending: this.pending,
      inFlight: this.inFlight,
      synced: this.synced,
      oldestUnsyncedMs: oldest?.wall_ms ?? null,
    }
  }
}
