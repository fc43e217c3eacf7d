import type { Logger } from 'pino'
import { v7 as uuidv7 } from 'uuid'
import type { Checkin } from '../../shared/checkin.js'
import { GateError } from '../../shared/errors.js'
import type { Clock } from '../clock.js'
import { type Db, setMeta } from './db.js'
import { CheckinState, type CheckinStateName } from './schema.js'

/** What the pipeline hands to the outbox; the outbox adds id, gate, boot, sequence and times. */
export type CheckinDraft = Pick<
  Checkin,
  'token' | 'participantId' | 'decision' | 'reason' | 'rssi' | 'rosterVersion'
> & {
  /** monotonic ms of the advert that led to the decision */
  monoMs: number
}

/** Called once the check-in is durable (committed with synchronous=FULL), never before. */
export type OnDurable = (checkin: Checkin) => void

/** Write counters: SD cards wear out, so every commit is counted. */
export interface OutboxWriteStats {
  commits: number
  rowsWritten: number
  commitErrors: number
}

/** Buffer counts for status and metrics. */
export interface OutboxCounts {
  pending: number
  inFlight: number
  synced: number
  /** wall ms of the oldest check-in not yet synced, or null */
  oldestUnsyncedMs: number | null
}

interface Queued {
  row: Checkin
  onDurable: OnDurable
}

const COLUMNS =
  'id, gate_id AS gateId, token, participant_id AS participantId, method, decision, reason, rssi, wall_ms AS ts, ' +
  'mono_ms AS monoMs, boot_id AS bootId, boot_seq AS bootSeq, roster_version AS rosterVersion'

/**
 * The durable outbox. Decisions are queued and committed together (group commit: every decision made
 * in the same tick shares one fsync); a decision's callback runs only after its commit.
 * Rows move pending -> in flight (claimed by the syncer) -> synced; in-flight rows return to pending at start.
 */
export class Outbox {
  readonly stats: OutboxWriteStats = { commits: 0, rowsWritten: 0, commitErrors: 0 }
  private queue: Queued[] = []
  /** row counts by state, kept from each statement's changes: counting a million rows would block decisions */
  private n = { pending: 0, inFlight: 0, synced: 0 }
  private scheduled: NodeJS.Immediate | NodeJS.Timeout | null = null
  private bootSeq = 0
  private readonly insert
  private readonly oldestStmt
  private readonly commitQueue: (rows: Queued[]) => void

  constructor(
    private readonly db: Db,
    private readonly deps: {
      clock: Clock
      log: Logger
      gateId: string
      bootId: string
      /** wait this long for more decisions before committing, ms (0 = next tick) */
      groupCommitDelayMs: number
    },
  ) {
    this.insert = db.prepare(
      `INSERT INTO checkins (id, gate_id, token, participant_id, method, decision, reason, rssi, wall_ms, mono_ms,
         boot_id, boot_seq, roster_version) VALUES (@id, @gateId, @token, @participantId, @method, @decision, @reason,
         @rssi, @ts, @monoMs, @bootId, @bootSeq, @rosterVersion)`,
    )
    this.commitQueue = db.transaction((rows: Queued[]) => {
      for (const q of rows) this.insert.run(q.row)
    })
    this.oldestStmt = db.prepare('SELECT wall_ms FROM checkins WHERE state < 2 ORDER BY seq_no LIMIT 1')
    const c = outboxCounts(db)
    this.n = { pending: c.pending, inFlight: c.inFlight, synced: c.synced }
  }

  /** Queue a decision; `onDurable` runs after the commit that makes it durable. */
  append(draft: CheckinDraft, onDurable: OnDurable): Checkin {
    const row: Checkin = {
      id: uuidv7(),
      gateId: this.deps.gateId,
      token: draft.token,
      participantId: draft.participantId,
      method: 'ble',
      decision: draft.decision,
      reason: draft.reason,
      rssi: Math.round(draft.rssi),
      ts: Math.round(this.deps.clock.now()),
      monoMs: draft.monoMs,
      bootId: this.deps.bootId,
      bootSeq: ++this.bootSeq,
      rosterVersion: draft.rosterVersion,
    }
    this.queue.push({ row, onDurable })
    if (this.scheduled === null) {
      this.scheduled =
        this.deps.groupCommitDelayMs > 0
          ? setTimeout(() => this.flushQuietly(), this.deps.groupCommitDelayMs)
          : setImmediate(() => this.flushQuietly())
    }
    return row
  }

  /** Decisions queued but not yet committed. */
  queued(): number {
    return this.queue.length
  }

  /**
   * Commit everything queued now, then run the callbacks. On a write error nothing is emitted
   * (the gate fails closed), the rows stay queued for the next attempt, and the error is thrown.
   */
  flush(): void {
    if (this.scheduled !== null) {
      clearImmediate(this.scheduled as NodeJS.Immediate)
      clearTimeout(this.scheduled as NodeJS.Timeout)
      this.scheduled = null
    }
    if (this.queue.length === 0) return
    const batch = this.queue
    try {
      this.commitQueue(batch)
    } catch (err) {
      this.stats.commitErrors++
      this.deps.log.error({ err, queued: batch.length }, 'outbox commit failed; decisions withheld')
      if (this.scheduled === null) this.scheduled = setTimeout(() => this.flushQuietly(), 500)
      throw new GateError('E_DB_WRITE', `outbox commit failed: ${(err as Error).message}`, { cause: err })
    }
    this.queue = []
    this.n.pending += batch.length
    this.stats.commits++
    this.stats.rowsWritten += batch.length
    for (const q of batch) {
      try {
        q.onDurable(q.row)
      } catch (err) {
        this.deps.log.error({ err }, 'decision listener failed')
      }
    }
  }

  private flushQuietly(): void {
    try {
      this.flush()
    } catch {
      // logged and counted in flush(); retried on the next append or timer
    }
  }

  /** Return in-flight rows to pending (after a crash the syncer's claim is void). Returns how many. */
  recoverInFlight(): number {
    const c = this.db.prepare('UPDATE checkins SET state = 0 WHERE state = 1').run().changes
    this.move('inFlight', 'pending', c)
    return c
  }

  /** Claim up to `limit` pending rows, oldest first, for upload: they become in flight. */
  claimBatch(limit: number): Checkin[] {
    return this.db
      .transaction(() => {
        const rows = this.db
          .prepare(`SELECT seq_no, ${COLUMNS} FROM checkins WHERE state = 0 ORDER BY seq_no LIMIT ?`)
          .all(limit) as Array<Checkin & { seq_no: number }>
        const first = rows[0]
        const last = rows[rows.length - 1]
        if (!first || !last) return []
        const c = this.db
          .prepare(
            'UPDATE checkins SET state = 1, attempts = attempts + 1 WHERE state = 0 AND seq_no BETWEEN ? AND ?',
          )
          .run(first.seq_no, last.seq_no).changes
        this.move('pending', 'inFlight', c)
        return rows.map(({ seq_no: _s, ...c }) => c)
      })
      .immediate()
  }

  /** Mark claimed rows synced (the cloud acknowledged them). */
  markSynced(ids: readonly string[]): number {
    if (ids.length === 0) return 0
    // one statement for the whole batch: it runs on the event loop, so it must be short
    const c = this.db
      .prepare(
        'UPDATE checkins SET state = 2, synced_at = ? WHERE state = 1 AND id IN (SELECT value FROM json_each(?))',
      )
      .run(this.deps.clock.now(), JSON.stringify(ids)).changes
    this.move('inFlight', 'synced', c)
    return c
  }

  /**
   * Mark claimed rows the cloud refused for good (a timestamp it will never accept): they leave the
   * queue so they cannot block it, and stay in the file with the reason, for `gatectl checkins`.
   */
  markRejected(rows: ReadonlyArray<{ id: string; reason: string }>): number {
    const stmt = this.db.prepare(
      'UPDATE checkins SET state = 2, synced_at = ?, sync_error = ? WHERE id = ? AND state = 1',
    )
    const now = this.deps.clock.now()
    const c = this.db
      .transaction(() => rows.reduce((n, r) => n + stmt.run(now, r.reason, r.id).changes, 0))
      .immediate()
    this.move('inFlight', 'synced', c)
    return c
  }

  /**
   * The cloud's answer to one batch, in one transaction (one fsync): the rows it stored become synced,
   * the ones it refused are kept with their reason, and the time of this sync is remembered for
   * `gatectl status` when the daemon is down.
   */
  recordSync(stored: readonly string[], refused: ReadonlyArray<{ id: string; reason: string }>): void {
    const before = { ...this.n }
    try {
      this.db
        .transaction(() => {
          this.markSynced(stored)
          if (refused.length > 0) this.markRejected(refused)
          setMeta(this.db, 'last_sync_at', String(this.deps.clock.now()))
        })
        .immediate()
    } catch (err) {
      this.n = before // rolled back: so are the counts
      throw err
    }
  }

  /** Return claimed rows to pending (the upload failed). */
  release(ids: readonly string[]): void {
    if (ids.length === 0) return
    const c = this.db
      .prepare('UPDATE checkins SET state = 0 WHERE state = 1 AND id IN (SELECT value FROM json_each(?))')
      .run(JSON.stringify(ids)).changes
    this.move('inFlight', 'pending', c)
  }

  /** Delete synced rows older than `days`; pending, in-flight and refused rows are never deleted. */
  prune(days: number): number {
    const cutoff = this.deps.clock.now() - days * 86_400_000
    const c = this.db
      .prepare('DELETE FROM checkins WHERE state = 2 AND sync_error IS NULL AND wall_ms < ?')
      .run(cutoff).changes
    this.n.synced -= c
    return c
  }

  private move(from: keyof Outbox['n'], to: keyof Outbox['n'], count: number): void {
    this.n[from] -= count
    this.n[to] += count
  }

  /** Buffer counts (cheap: the partial index holds only unsynced rows). */
  counts(): OutboxCounts {
    const oldest = this.oldestStmt.get() as { wall_ms: number } | undefined
    return { ...this.n, oldestUnsyncedMs: oldest?.wall_ms ?? null }
  }

  /** Decisions made for tokens since a wall time, newest last (to rebuild dedup memory at start). */
  decisionsSince(wallMs: number): Checkin[] {
    return this.db
      .prepare(`SELECT ${COLUMNS} FROM checkins WHERE wall_ms >= ? ORDER BY seq_no`)
      .all(wallMs) as Checkin[]
  }
}

/** Buffer counts from any connection (also a read-only one, when the daemon is down). */
export function outboxCounts(db: Db): OutboxCounts {
  const u = db
    .prepare(
      `SELECT count(*) FILTER (WHERE state = 0) AS pending, count(*) FILTER (WHERE state = 1) AS inFlight,
              min(wall_ms) AS oldest FROM checkins WHERE state < 2`,
    )
    .get() as { pending: number; inFlight: number; oldest: number | null }
  const synced =
    (db.prepare('SELECT count(*) AS n FROM checkins').get() as { n: number }).n - u.pending - u.inFlight
  return { pending: u.pending, inFlight: u.inFlight, synced, oldestUnsyncedMs: u.oldest }
}

/** List buffered check-ins for gatectl, newest first. */
export type ListState = CheckinStateName | 'refused'

export function listCheckins(
  db: Db,
  filter: { state?: ListState | 'all'; limit?: number; token?: string },
): Array<Checkin & { state: ListState; syncError: string | null }> {
  const where: string[] = []
  const params: unknown[] = []
  if (filter.state === 'refused') where.push('state = 2 AND sync_error IS NOT NULL')
  else if (filter.state === 'synced') where.push('state = 2 AND sync_error IS NULL')
  else if (filter.state && filter.state !== 'all') {
    where.push('state = ?')
    params.push(CheckinState[filter.state])
  }
  if (filter.token) {
    where.push('token = ?')
    params.push(filter.token)
  }
  const sql =
    `SELECT ${COLUMNS}, state, sync_error AS syncError FROM checkins ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ` +
    'ORDER BY seq_no DESC LIMIT ?'
  params.push(filter.limit ?? -1)
  const names: CheckinStateName[] = ['pending', 'inFlight', 'synced']
  return (db.prepare(sql).all(...params) as Array<Checkin & { state: number; syncError: string | null }>).map(
    (r) => ({
      ...r,
      state: r.syncError ? 'refused' : (names[r.state] ?? 'pending'),
    }),
  )
}
