import { createHistogram, performance } from 'node:perf_hooks'
import type { Logger } from 'pino'
import { v7 as uuidv7 } from 'uuid'
import type { Checkin } from '../../shared/checkin.js'
import { GateError } from '../../shared/errors.js'
import { type Clock, cancel, type Scheduled, schedule } from '../clock.js'
import { type Db, setMeta } from './db.js'
import { CheckinState, type CheckinStateName } from './schema.js'
import type { StoreThread, ThreadRows } from './store-thread.js'

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

/** Called instead of OnDurable when a decision waited too long for a failing disk and was dropped. */
export type OnWithheld = (checkin: Checkin) => void

/** Write counters: SD cards wear out, so every commit is counted. */
export interface OutboxWriteStats {
  commits: number
  rowsWritten: number
  commitErrors: number
  /** decisions dropped after waiting longer than maxWaitMs for a failing disk */
  expired: number
  /** whether the last commit failed: decisions are being withheld now */
  failing: boolean
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
  onWithheld: OnWithheld | undefined
  /** performance.now() when it was queued */
  at: number
}

/** The same fields, as json_object() arguments: the wire format of a check-in (shared/checkin.ts). */
const JSON_FIELDS =
  "'id', id, 'gateId', gate_id, 'token', token, 'participantId', participant_id, 'method', method, " +
  "'decision', decision, 'reason', reason, 'rssi', rssi, 'ts', wall_ms, 'monoMs', mono_ms, 'bootId', boot_id, " +
  "'bootSeq', boot_seq, 'rosterVersion', roster_version"

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

const emptyClaim = () => new Claim(0, -1, 0, '[]')

const claimSql = (where: string) =>
  `SELECT min(seq_no) AS first, max(seq_no) AS last, count(*) AS n, json_group_array(json_object(${JSON_FIELDS})) AS json
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
/** rows looked at per prune slice: the event loop is held for one such slice at a time */
const PRUNE_LIMIT = 5_000
/** decisions waiting for a commit that keeps failing: more are refused (fail closed), not queued */
const MAX_QUEUED = 10_000
/** default of `maxWaitMs`, ms */
const DEFAULT_MAX_WAIT_MS = 2_000

type ClaimRows = { first: number | null; last: number | null; n: number; json: string | Uint8Array }

const COLUMNS =
  'id, gate_id AS gateId, token, participant_id AS participantId, method, decision, reason, rssi, wall_ms AS ts, ' +
  'mono_ms AS monoMs, boot_id AS bootId, boot_seq AS bootSeq, roster_version AS rosterVersion'

/**
 * The durable outbox. Decisions are queued and committed together (group commit: every decision made
 * in the same tick shares one fsync); a decision's callback runs only after its commit.
 * Rows move pending -> in flight (claimed by the syncer, in memory) -> synced.
 */
export class Outbox {
  readonly stats: OutboxWriteStats = {
    commits: 0,
    rowsWritten: 0,
    commitErrors: 0,
    expired: 0,
    failing: false,
  }
  /** how long each group commit took (its fsync included), microseconds; bounded (HDR histogram) */
  readonly commitLatencyUs = createHistogram()
  private queue: Queued[] = []
  /** performance.now() of the last commit slower than `slowCommitMs` */
  private lastSlowCommit = Number.NEGATIVE_INFINITY
  /** row counts by state, kept from each statement's changes: counting a million rows would block decisions */
  private n = { pending: 0, inFlight: 0, synced: 0 }
  private scheduled: Scheduled | null = null
  private bootSeq = 0
  private readonly insert
  private readonly oldestStmt
  private readonly commitQueue: (rows: Queued[]) => void
  private readonly claimNextStmt
  private readonly claimRangeStmt
  private readonly syncRangeStmt
  private readonly syncIdsStmt
  private readonly refuseStmt
  /** claims the syncer holds (memory only: on disk their rows are pending) */
  private readonly claims = new Set<Claim>()
  /** seq_no ranges of released claims, claimed again first */
  private readonly retry: Array<{ first: number; last: number }> = []
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
    private readonly deps: {
      clock: Clock
      log: Logger
      gateId: string
      bootId: string
      /** wait this long for more decisions before committing, ms (0 = next tick) */
      groupCommitDelayMs: number
      /** a commit taking longer is remembered as slow (see msSinceSlowCommit), ms */
      slowCommitMs?: number
      /**
       * a decision still waiting for a failing disk this long is dropped, never emitted, ms (default
       * 2000): the person is at the turnstile now, and one that opens minutes later opens for nobody
       */
      maxWaitMs?: number
      /**
       * renders claims off the event loop while it runs (started with CLAIM_QUERIES); if it is not
       * running, the outbox starts it for a backlog and stops it when the backlog is gone
       */
      thread?: StoreThread
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
    const c = outboxCounts(db)
    this.n = { pending: c.pending, inFlight: c.inFlight, synced: c.synced }
  }

  /**
   * Queue a decision; `onDurable` runs after the commit that makes it durable. While commits fail
   * (a full or broken disk) decisions wait here, withheld; one that has waited longer than
   * `maxWaitMs` is dropped (`onWithheld`), and past `MAX_QUEUED` of them a new one is refused
   * (E_DB_WRITE: the gate fails closed) rather than growing memory without end.
   */
  append(draft: CheckinDraft, onDurable: OnDurable, onWithheld?: OnWithheld): Checkin {
    if (this.queue.length >= MAX_QUEUED)
      throw new GateError(
        'E_DB_WRITE',
        `${this.queue.length} decisions are already waiting for the database to accept a commit; this one is refused`,
      )
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
    this.queue.push({ row, onDurable, onWithheld, at: performance.now() })
    if (this.scheduled === null)
      this.scheduled = schedule(() => this.flushQuietly(), this.deps.groupCommitDelayMs)
    return row
  }

  /** Rows waiting to be claimed (kept in memory: no query). */
  pending(): number {
    return this.n.pending
  }

  /** How long ago a decision's commit last took longer than `slowCommitMs`, ms (Infinity: never). */
  msSinceSlowCommit(): number {
    return performance.now() - this.lastSlowCommit
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
    cancel(this.scheduled)
    this.scheduled = null
    if (this.queue.length === 0) return
    const batch = this.queue
    try {
      const t0 = performance.now()
      this.commitQueue(batch)
      const t1 = performance.now()
      this.commitLatencyUs.record(Math.max(1, Math.round((t1 - t0) * 1000)))
      if (this.deps.slowCommitMs !== undefined && t1 - t0 > this.deps.slowCommitMs) this.lastSlowCommit = t1
    } catch (err) {
      this.stats.commitErrors++
      this.stats.failing = true
      this.deps.log.error({ err, queued: batch.length }, 'outbox commit failed; decisions withheld')
      this.expireWaiting()
      if (this.scheduled === null) this.scheduled = schedule(() => this.flushQuietly(), 500, { unref: true })
      throw new GateError('E_DB_WRITE', `outbox commit failed: ${(err as Error).message}`, { cause: err })
    }
    this.queue = []
    this.n.pending += batch.length
    this.stats.commits++
    this.stats.failing = false
    this.stats.rowsWritten += batch.length
    for (const q of batch) {
      try {
        q.onDurable(q.row)
      } catch (err) {
        this.deps.log.error({ err }, 'decision listener failed')
      }
    }
  }

  /** Drop the decisions that have waited past maxWaitMs for the failing disk (oldest are first). */
  private expireWaiting(): void {
    const limit = performance.now() - (this.deps.maxWaitMs ?? DEFAULT_MAX_WAIT_MS)
    let n = 0
    while (n < this.queue.length && (this.queue[n] as Queued).at <= limit) n++
    if (n === 0) return
    const expired = this.queue.splice(0, n)
    this.stats.expired += n
    this.deps.log.warn({ expired: n }, 'decisions waited too long for the disk; dropped, never emitted')
    for (const q of expired) {
      try {
        q.onWithheld?.(q.row)
      } catch (err) {
        this.deps.log.error({ err }, 'withheld listener failed')
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

  /**
   * Return rows an older build left marked in flight (state 1) to pending. Claims live in memory
   * now (a crash voids them without a write), so this only matters for a file from before. Returns how many.
   */
  recoverInFlight(): number {
    const c = this.db.prepare('UPDATE checkins SET state = 0 WHERE state = 1').run().changes
    this.move('inFlight', 'pending', c)
    return c
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
    const r = (
      retry
        ? this.claimRangeStmt.get(retry.first, retry.last, limit)
        : this.claimNextStmt.get(this.cursor, limit)
    ) as ClaimRows
    return this.take(r, retry)
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

  private async claimOffLoop(limit: number): Promise<Claim> {
    const thread = this.deps.thread
    if (!this.db.open) return emptyClaim()
    if (!thread) return this.claimBatch(limit)
    if (thread.state === 'off' && this.n.pending >= limit * THREAD_BACKLOG_BATCHES) {
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
    if (!retry && rows.n < limit && this.threadForBacklog) {
      this.threadForBacklog = false
      void thread.stop()
    }
    return this.take(rows, retry)
  }

  private take(r: ClaimRows, retry: { first: number; last: number } | undefined): Claim {
    if (r.n === 0 || r.first === null || r.last === null) return emptyClaim()
    if (retry) {
      // a claim halved after a 413: the rest of the released range waits for the next claim
      if (r.last < retry.last) this.retry.unshift({ first: r.last + 1, last: retry.last })
    } else {
      this.cursor = r.last
    }
    const claim = new Claim(r.first, r.last, r.n, r.json)
    this.claims.add(claim)
    this.move('pending', 'inFlight', r.n)
    return claim
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

  private async recordInSlices(
    claim: Claim,
    stored: readonly string[],
    refused: ReadonlyArray<{ id: string; reason: string }>,
  ): Promise<{ synced: number; refused: number }> {
    if (!this.claims.delete(claim)) return { synced: 0, refused: 0 }
    const ids = stored.length === claim.count && refused.length === 0 ? null : JSON.stringify(stored)
    let synced = 0
    let rejected = 0
    try {
      for (let from = claim.first; from <= claim.last; from += RECORD_SLICE) {
        if (from > claim.first) await new Promise((r) => setImmediate(r))
        if (!this.db.open) break // stopped between slices: the rest is pending on disk
        const to = Math.min(claim.last, from + RECORD_SLICE - 1)
        const now = this.deps.clock.now()
        this.db.pragma('synchronous = NORMAL')
        try {
          // counted once the slice has committed: a slice that fails is rolled back whole, and its
          // rows must go back to pending
          const slice = this.db
            .transaction(() => {
              const s =
                ids === null
                  ? this.syncRangeStmt.run(now, from, to).changes
                  : this.syncIdsStmt.run(now, from, to, ids).changes
              let r = 0
              if (to < claim.last) return { s, r }
              for (const x of refused)
                r += this.refuseStmt.run(now, x.reason, x.id, claim.first, claim.last).changes
              setMeta(this.db, 'last_sync_at', String(now))
              return { s, r }
            })
            .immediate()
          synced += slice.s
          rejected += slice.r
        } finally {
          this.db.pragma('synchronous = FULL')
        }
      }
    } finally {
      // also after a failed slice: what was committed is synced, the rest is claimed again
      const left = claim.count - synced - rejected
      this.n.inFlight -= claim.count
      this.n.synced += synced + rejected
      this.n.pending += left
      if (left > 0) this.retryLater(claim)
    }
    return { synced, refused: rejected }
  }

  /** Return a claim's rows to pending (the upload failed): they are claimed again before newer rows. */
  release(claim: Claim): void {
    if (!this.claims.delete(claim)) return
    this.move('inFlight', 'pending', claim.count)
    this.retryLater(claim)
  }

  private retryLater(claim: Claim): void {
    this.retry.push({ first: claim.first, last: claim.last })
    this.retry.sort((a, b) => a.first - b.first)
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
    const cutoff = this.deps.clock.now() - days * 86_400_000
    const from = opts.from ?? 0
    const limit = opts.limit ?? PRUNE_LIMIT
    const w = this.db
      .prepare(
        `SELECT max(seq_no) AS last, count(*) AS n, coalesce(sum(wall_ms >= ?), 0) AS young
           FROM (SELECT seq_no, wall_ms FROM checkins WHERE seq_no > ? ORDER BY seq_no LIMIT ?)`,
      )
      .get(cutoff, from, limit) as { last: number | null; n: number; young: number }
    if (w.last === null) return { deleted: 0, next: null }
    // the newest row always stays: SQLite gives a new row max(seq_no) + 1, and a seq_no must never
    // be reused at or below the syncer's claim cursor
    const deleted = this.db
      .prepare(
        `DELETE FROM checkins WHERE seq_no > ? AND seq_no <= ? AND state = 2 AND sync_error IS NULL AND wall_ms < ?
            AND seq_no < (SELECT max(seq_no) FROM checkins)`,
      )
      .run(from, w.last, cutoff).changes
    this.n.synced -= deleted
    return { deleted, next: w.n < limit || w.young > 0 ? null : w.last }
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
      .all() as Array<{ first: number; last: number }>
    if (runs.length === 0) return 0
    const c = markRefusedPending(this.db)
    this.move('synced', 'pending', c)
    this.retry.push(...runs)
    this.retry.sort((a, b) => a.first - b.first)
    return c
  }

  /** Stop retrying a failed commit (the agent is stopping; what is still queued was never emitted). */
  close(): void {
    cancel(this.scheduled)
    this.scheduled = null
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
