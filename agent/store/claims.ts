import type { Logger } from 'pino'
import type { Checkin } from '../../shared/checkin.js'
import type { Clock } from '../clock.js'
import { type Db, setMeta } from './db.js'
import type { RowCounts } from './row-counts.js'
import type { StoreThread } from './store-thread.js'
import type { ThreadRows } from './store-thread-messages.js'

/** The same fields, as json_object() arguments: the wire format of a check-in (shared/checkin.ts). */
const JSON_FIELDS =
  "'id', id, 'gateId', gate_id, 'token', token, 'participantId', participant_id, 'method', method, " +
  "'decision', decision, 'reason', reason, 'rssi', rssi, 'ts', wall_ms, 'monoMs', mono_ms, 'bootId', boot_id, " +
  "'bootSeq', boot_seq, 'rosterVersion', roster_version"

/**
 * The fields a record has only under an access policy, by hand or when it annuls an admit: merged
 * in (json_patch drops the null ones) only for rows that have one, so that the others stay as
 * small and as quick to render as before.
 */
const EXTRA_FIELDS =
  "'zoneIn', zone_in, 'zoneOut', zone_out, 'ruleId', rule_id, 'policyVersion', policy_version, " +
  "'explanation', explanation, 'actor', actor, 'note', note, 'annuls', annuls"
const RECORD_JSON =
  `CASE WHEN zone_in IS NULL AND zone_out IS NULL AND rule_id IS NULL AND policy_version IS NULL AND explanation IS NULL ` +
  `AND actor IS NULL AND annuls IS NULL ` +
  `THEN json_object(${JSON_FIELDS}) ELSE json_patch(json_object(${JSON_FIELDS}), json_object(${EXTRA_FIELDS})) END`

/** Rows claimed for one upload: a seq_no range, and the records as the JSON array the cloud takes. */
export class Claim {
  constructor(
    readonly first: number,
    readonly last: number,
    readonly count: number,
    /** a JSON array; UTF-8 bytes when the store thread rendered it */
    readonly json: string | Uint8Array,
  ) {}

  /** The records as objects (for tests and tools; the syncer sends `json` as it is). */
  get records(): Checkin[] {
    const text = typeof this.json === 'string' ? this.json : Buffer.from(this.json).toString('utf8')
    return JSON.parse(text) as Checkin[]
  }
}

/** A claim of nothing. */
const emptyClaim = () => new Claim(0, -1, 0, '[]')

/** The claim query over the pending rows `where` selects, oldest first, `LIMIT ?` rows. */
const claimSql = (where: string) =>
  `SELECT min(seq_no) AS first, max(seq_no) AS last, count(*) AS count, json_group_array(${RECORD_JSON}) AS json
     FROM (SELECT * FROM checkins WHERE state = 0 AND ${where} ORDER BY seq_no LIMIT ?)`

/** The claim queries, by name, for the main connection and the store thread alike. */
export const CLAIM_QUERIES = {
  /** (cursor, limit): the oldest new rows */
  next: claimSql('seq_no > ?'),
  /** (first, last, limit): rows of a released claim */
  range: claimSql('seq_no BETWEEN ? AND ?'),
}

/** The store thread renders claims once this many batches are pending (a backlog drain); until then the main thread does. */
const THREAD_BACKLOG_BATCHES = 10

/** The cloud's answer to a claim is recorded this many rows per transaction, the event loop free in between. */
export const RECORD_SLICE = 250

/** A claim query's one row, from the main connection (JSON text) or the store thread (bytes). */
type ClaimRows = { first: number | null; last: number | null; count: number; json: string | Uint8Array }

/** A range of seq_no, both ends included. */
export interface SeqRange {
  first: number
  last: number
}

/** What the claims are given: the world, and the store thread that renders claims during a backlog. */
export interface ClaimsDeps {
  clock: Clock
  log: Logger
  /**
   * renders claims off the event loop while it runs (started with CLAIM_QUERIES); if it is not
   * running, the claims start it for a backlog and stop it when the backlog is gone
   */
  thread?: StoreThread
}

/**
 * The syncer's side of the outbox: rows are claimed for upload (pending -> in flight, in memory
 * only) and the cloud's answer is recorded (in flight -> synced, refused, or pending again).
 */
export class Claims {
  private readonly claimNextStmt
  private readonly claimRangeStmt
  private readonly syncRangeStmt
  private readonly syncIdsStmt
  private readonly refuseStmt
  /** claims the syncer holds (memory only: on disk their rows are pending) */
  private readonly held = new Set<Claim>()
  /** seq_no ranges of released claims, claimed again first */
  private readonly retry: SeqRange[] = []
  /** the next claim of new rows starts after this seq_no */
  private cursor = 0
  /** claims are taken one after another (each starts where the last ended) */
  private claiming: Promise<unknown> = Promise.resolve()
  /** answers are recorded one after another: one slice per turn of the event loop, whatever the lanes */
  private recording: Promise<unknown> = Promise.resolve()
  /** the store thread was started here for a backlog (and is stopped here once it is drained) */
  private threadForBacklog = false

  constructor(
    private readonly db: Db,
    private readonly counts: RowCounts,
    private readonly deps: ClaimsDeps,
  ) {
    this.claimNextStmt = db.prepare(CLAIM_QUERIES.next)
    this.claimRangeStmt = db.prepare(CLAIM_QUERIES.range)
    this.syncRangeStmt = db.prepare(
      'UPDATE checkins SET state = 2, synced_at = ? WHERE state = 0 AND seq_no BETWEEN ? AND ?',
    )
    this.syncIdsStmt = db.prepare(
      `UPDATE checkins SET state = 2, synced_at = ?
        WHERE state = 0 AND seq_no BETWEEN ? AND ? AND id IN (SELECT value FROM json_each(?))`,
    )
    this.refuseStmt = db.prepare(
      'UPDATE checkins SET state = 2, synced_at = ?, sync_error = ? WHERE id = ? AND state = 0 AND seq_no BETWEEN ? AND ?',
    )
  }

  /**
   * Claim up to `limit` pending rows, oldest first (rows of a released claim first), for upload:
   * they are in flight until the cloud answers or the claim is released. A claim is a range of
   * seq_no kept in memory only: writing it would cost a commit (an fsync on the event loop) per batch,
   * and after a crash every unacknowledged row is pending anyway. SQLite renders the records as the
   * JSON the cloud takes: turning a thousand rows into JS objects and back costs the event loop
   * several milliseconds per batch.
   */
  claimBatch(limit: number): Claim {
    const retry = this.retry.shift()
    const rows = (
      retry
        ? this.claimRangeStmt.get(retry.first, retry.last, limit)
        : this.claimNextStmt.get(this.cursor, limit)
    ) as ClaimRows
    return this.take(rows, retry)
  }

  /**
   * claimBatch, with the rows rendered on the store thread while a backlog drains (the thread is
   * started when `THREAD_BACKLOG_BATCHES` batches are pending and stopped once a claim comes back
   * short, unless it was running already). Claims are taken one after another. If the thread fails,
   * the main thread claims.
   */
  claim(limit: number): Promise<Claim> {
    const next = this.claiming.then(() => this.claimOffLoop(limit))
    this.claiming = next.catch(() => undefined)
    return next
  }

  /**
   * The cloud's answer to one claim: the rows it stored become synced, the ones it refused are kept
   * with their reason, rows it did not mention go back to pending, and the time of this sync is
   * remembered for `gatectl status` when the daemon is down. Only rows of this claim are touched,
   * whatever ids the answer names. The rows are marked `RECORD_SLICE` at a time, one transaction
   * each with the event loop free in between: a decision arriving meanwhile waits for one slice, not
   * for a thousand rows. These commits are not waited for on disk (synchronous = NORMAL for them):
   * the next decision's commit makes them durable, and if the power fails first (or the agent stops
   * between slices) the rows are sent again and the cloud counts them as duplicates. An fsync here
   * would stall decisions behind every batch of a backlog drain.
   */
  recordSync(
    claim: Claim,
    stored: readonly string[],
    refused: ReadonlyArray<{ id: string; reason: string }> = [],
  ): Promise<{ synced: number; refused: number }> {
    const next = this.recording.then(() => this.recordInSlices(claim, stored, refused))
    this.recording = next.catch(() => undefined)
    return next
  }

  /** Return a claim's rows to pending (the upload failed): they are claimed again before newer rows. */
  release(claim: Claim): void {
    if (!this.held.delete(claim)) return
    this.counts.move('inFlight', 'pending', claim.count)
    this.requeue([claim])
  }

  /** Claim these ranges again before newer rows (released claims, refused rows sent again). */
  requeue(ranges: readonly SeqRange[]): void {
    for (const { first, last } of ranges) this.retry.push({ first, last })
    this.retry.sort((a, b) => a.first - b.first)
  }

  /** claimBatch on the store thread while it runs (started here for a backlog), else on the main thread. */
  private async claimOffLoop(limit: number): Promise<Claim> {
    const thread = this.deps.thread
    if (!this.db.open) return emptyClaim()
    if (!thread) return this.claimBatch(limit)
    if (thread.state === 'off' && this.counts.pending >= limit * THREAD_BACKLOG_BATCHES) {
      thread.start()
      this.threadForBacklog = true
    }
    if (!thread.running) return this.claimBatch(limit)
    const retry = this.retry.shift()
    let rows: ThreadRows
    try {
      rows = await (retry
        ? thread.read('range', [retry.first, retry.last, limit])
        : thread.read('next', [this.cursor, limit]))
    } catch (err) {
      if (retry) this.retry.unshift(retry)
      if (!this.db.open) return emptyClaim()
      this.deps.log.warn({ err }, 'store thread could not claim; claiming on the main thread')
      return this.claimBatch(limit)
    }
    if (!this.db.open) return emptyClaim()
    if (!retry && rows.count < limit && this.threadForBacklog) {
      this.threadForBacklog = false
      void thread.stop()
    }
    return this.take(rows, retry)
  }

  /** The claim of the rows a claim query returned, held until the cloud answers or it is released. */
  private take(rows: ClaimRows, retry: SeqRange | undefined): Claim {
    if (rows.count === 0 || rows.first === null || rows.last === null) return emptyClaim()
    if (retry) {
      // a claim halved after a 413: the rest of the released range waits for the next claim
      if (rows.last < retry.last) this.retry.unshift({ first: rows.last + 1, last: retry.last })
    } else {
      this.cursor = rows.last
    }
    const claim = new Claim(rows.first, rows.last, rows.count, rows.json)
    this.held.add(claim)
    this.counts.move('pending', 'inFlight', rows.count)
    return claim
  }

  /** recordSync's work, `RECORD_SLICE` rows per transaction with the event loop free in between. */
  private async recordInSlices(
    claim: Claim,
    stored: readonly string[],
    refused: ReadonlyArray<{ id: string; reason: string }>,
  ): Promise<{ synced: number; refused: number }> {
    if (!this.held.delete(claim)) return { synced: 0, refused: 0 }
    const ids = stored.length === claim.count && refused.length === 0 ? null : JSON.stringify(stored)
    let synced = 0
    let rejected = 0
    try {
      for (let from = claim.first; from <= claim.last; from += RECORD_SLICE) {
        if (from > claim.first) await new Promise((resolve) => setImmediate(resolve))
        if (!this.db.open) break // stopped between slices: the rest is pending on disk
        const to = Math.min(claim.last, from + RECORD_SLICE - 1)
        const now = this.deps.clock.now()
        this.db.pragma('synchronous = NORMAL')
        try {
          // counted once the slice has committed: a slice that fails is rolled back whole, and its
          // rows must go back to pending
          const slice = this.db
            .transaction(() => {
              const syncedHere =
                ids === null
                  ? this.syncRangeStmt.run(now, from, to).changes
                  : this.syncIdsStmt.run(now, from, to, ids).changes
              let refusedHere = 0
              if (to < claim.last) return { syncedHere, refusedHere }
              for (const refusal of refused)
                refusedHere += this.refuseStmt.run(
                  now,
                  refusal.reason,
                  refusal.id,
                  claim.first,
                  claim.last,
                ).changes
              setMeta(this.db, 'last_sync_at', String(now))
              return { syncedHere, refusedHere }
            })
            .immediate()
          synced += slice.syncedHere
          rejected += slice.refusedHere
        } finally {
          this.db.pragma('synchronous = FULL')
        }
      }
    } finally {
      // also after a failed slice: what was committed is synced, the rest is claimed again
      const left = claim.count - synced - rejected
      this.counts.inFlight -= claim.count
      this.counts.synced += synced + rejected
      this.counts.pending += left
      if (left > 0) this.requeue([claim])
    }
    return { synced, refused: rejected }
  }
}
