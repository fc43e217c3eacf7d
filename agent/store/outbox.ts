import type { Checkin } from '../../shared/checkin.js'
import type { Claim } from './claims.js'
import { Claims, type ClaimsDeps } from './claims.js'
import type { Db } from './db.js'
import {
  type CheckinDraft,
  type DecisionSink,
  GroupCommit,
  type GroupCommitDeps,
  type OnDurable,
  type OnWithheld,
  type OutboxWriteStats,
} from './group-commit.js'
import { OutboxMaintenance } from './outbox-maintenance.js'
import type { OutboxCounts } from './outbox-queries.js'
import { RowCounts } from './row-counts.js'

/**
 * The durable outbox. Decisions are queued and committed together (group commit: every decision made
 * in the same tick shares one fsync); a decision's callback runs only after its commit.
 * Rows move pending -> in flight (claimed by the syncer, in memory) -> synced.
 *
 * One object over its parts, which share the row counts: the write side (group-commit.ts), the
 * syncer's claims and the recording of the cloud's answers (claims.ts), and upkeep
 * (outbox-maintenance.ts). Read-only queries for gatectl are in outbox-queries.ts.
 */
export class Outbox implements DecisionSink {
  /** write counters (commits, rows, failures) */
  readonly stats: OutboxWriteStats
  /** how long each group commit took (its fsync included), microseconds; bounded (HDR histogram) */
  readonly commitLatencyUs: GroupCommit['commitLatencyUs']
  private readonly rowCounts: RowCounts
  private readonly writes: GroupCommit
  private readonly claims: Claims
  private readonly maintenance: OutboxMaintenance

  constructor(db: Db, deps: GroupCommitDeps & ClaimsDeps) {
    this.rowCounts = new RowCounts(db)
    this.writes = new GroupCommit(db, this.rowCounts, deps)
    this.claims = new Claims(db, this.rowCounts, deps)
    this.maintenance = new OutboxMaintenance(db, this.rowCounts, this.claims, deps.clock)
    this.stats = this.writes.stats
    this.commitLatencyUs = this.writes.commitLatencyUs
  }

  /** Queue a decision; `onDurable` runs after its commit (see GroupCommit.append). */
  append(draft: CheckinDraft, onDurable: OnDurable, onWithheld?: OnWithheld): Checkin {
    return this.writes.append(draft, onDurable, onWithheld)
  }

  /** Commit everything queued now, then run the callbacks; throws E_DB_WRITE when the commit fails. */
  flush(): void {
    this.writes.flush()
  }

  /** Decisions queued but not yet committed. */
  queued(): number {
    return this.writes.queued()
  }

  /** How long ago a decision's commit last took longer than `slowCommitMs`, ms (Infinity: never). */
  msSinceSlowCommit(): number {
    return this.writes.msSinceSlowCommit()
  }

  /** Stop retrying a failed commit (the agent is stopping; what is still queued was never emitted). */
  close(): void {
    this.writes.close()
  }

  /** Rows waiting to be claimed (kept in memory: no query). */
  pending(): number {
    return this.rowCounts.pending
  }

  /** Buffer counts (cheap: the partial index holds only unsynced rows). */
  counts(): OutboxCounts {
    return this.rowCounts.snapshot()
  }

  /** Claim up to `limit` pending rows on the main thread (see Claims.claimBatch). */
  claimBatch(limit: number): Claim {
    return this.claims.claimBatch(limit)
  }

  /** Claim up to `limit` pending rows, rendered on the store thread during a backlog (see Claims.claim). */
  claim(limit: number): Promise<Claim> {
    return this.claims.claim(limit)
  }

  /** Record the cloud's answer to a claim (see Claims.recordSync). */
  recordSync(
    claim: Claim,
    stored: readonly string[],
    refused: ReadonlyArray<{ id: string; reason: string }> = [],
  ): Promise<{ synced: number; refused: number }> {
    return this.claims.recordSync(claim, stored, refused)
  }

  /** Return a claim's rows to pending (the upload failed): they are claimed again before newer rows. */
  release(claim: Claim): void {
    this.claims.release(claim)
  }

  /** Return rows an older build left in flight to pending; returns how many. */
  recoverInFlight(): number {
    return this.maintenance.recoverInFlight()
  }

  /** Delete one bounded slice of old synced rows (see OutboxMaintenance.prune). */
  prune(
    days: number,
    opts: { from?: number; limit?: number } = {},
  ): { deleted: number; next: number | null } {
    return this.maintenance.prune(days, opts)
  }

  /** Make the rows the cloud refused pending again, claimed before newer rows; returns how many. */
  resendRefused(): number {
    return this.maintenance.resendRefused()
  }
}
