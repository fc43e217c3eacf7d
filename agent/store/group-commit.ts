import { createHistogram, performance } from 'node:perf_hooks'
import type { Logger } from 'pino'
import { v7 as uuidv7 } from 'uuid'
import type { Checkin } from '../../shared/checkin.js'
import type { AccessNote } from '../../shared/control.js'
import { GateError } from '../../shared/errors.js'
import { type Clock, cancel, type Scheduled, schedule } from '../clock.js'
import type { Db } from './db.js'
import type { RowCounts } from './row-counts.js'

/** What the pipeline hands to the outbox; the outbox adds id, gate, boot, sequence and times. */
export type CheckinDraft = Pick<
  Checkin,
  'token' | 'participantId' | 'decision' | 'reason' | 'rssi' | 'rosterVersion'
> & {
  /** monotonic ms of the advert that led to the decision */
  monoMs: number
  /** what the access rules made of it (kept with the row: the zone ledger is rebuilt from it) */
  access?: AccessNote | undefined
  /** a decision by hand (gatectl admit|deny): who made it and why */
  manual?: { actor: string; note: string } | undefined
  /** an admit the person did not go through: the id of the admit this record annuls */
  annuls?: string | undefined
}

/** Called once the check-in is durable (committed with synchronous=FULL), never before. */
export type OnDurable = (checkin: Checkin) => void

/** Called instead of OnDurable when a decision waited too long for a failing disk and was dropped. */
export type OnWithheld = (checkin: Checkin) => void

/** Where the pipeline records a decision: its callback runs once it is durable, or it is withheld. */
export interface DecisionSink {
  /** Queue a decision for its durable commit; throws (E_DB_WRITE) when it is refused at once. */
  append(draft: CheckinDraft, onDurable: OnDurable, onWithheld?: OnWithheld): Checkin
}

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

/** What group commit is given: the world, who this gate and run are, and how long to wait. */
export interface GroupCommitDeps {
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
}

/** A decision waiting for its commit. */
interface Queued {
  row: Checkin
  access: AccessNote | undefined
  onDurable: OnDurable
  onWithheld: OnWithheld | undefined
  /** performance.now() when it was queued */
  at: number
}

/**
 * What a record says besides its verdict (shared/checkin.ts): only the fields that have a value,
 * so that a record without an access policy stays as small as it always was.
 */
function describe(row: Checkin, draft: CheckinDraft): void {
  const a = draft.access
  if (a) {
    if (a.zoneIn !== null) row.zoneIn = a.zoneIn
    if (a.zoneOut !== null) row.zoneOut = a.zoneOut
    if (a.ruleId !== null) row.ruleId = a.ruleId
    if (a.policyVersion > 0) row.policyVersion = a.policyVersion
    // why in words, for a denial (an admit's explanation adds nothing the rule does not say)
    if (draft.decision === 'deny' && a.explanation) row.explanation = a.explanation.slice(0, 300)
  }
  if (draft.manual) {
    row.method = 'manual'
    row.actor = draft.manual.actor
    row.note = draft.manual.note
  }
  if (draft.annuls) row.annuls = draft.annuls
}

/** decisions waiting for a commit that keeps failing: more are refused (fail closed), not queued */
const MAX_QUEUED = 10_000
/** default of `maxWaitMs`, ms */
const DEFAULT_MAX_WAIT_MS = 2_000
/** a failed commit is tried again after this, ms */
const RETRY_FAILED_COMMIT_MS = 500

/**
 * The write side of the outbox: decisions are queued and committed together (every decision made in
 * the same tick shares one fsync), and a decision's callback runs only after its commit.
 */
export class GroupCommit implements DecisionSink {
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
  private scheduled: Scheduled | null = null
  private bootSeq = 0
  private readonly commitQueue: (rows: Queued[]) => void

  constructor(
    db: Db,
    private readonly counts: RowCounts,
    private readonly deps: GroupCommitDeps,
  ) {
    const insert = db.prepare(
      `INSERT INTO checkins (id, gate_id, token, participant_id, method, decision, reason, rssi, wall_ms, mono_ms,
         boot_id, boot_seq, roster_version, zone_in, zone_out, rule_id, policy_version, explanation, actor, note, annuls)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    this.commitQueue = db.transaction((rows: Queued[]) => {
      // positional: no object made per row on the path every decision takes
      for (const { row: r } of rows)
        insert.run(
          r.id,
          r.gateId,
          r.token,
          r.participantId,
          r.method,
          r.decision,
          r.reason,
          r.rssi,
          r.ts,
          r.monoMs,
          r.bootId,
          r.bootSeq,
          r.rosterVersion,
          r.zoneIn ?? null,
          r.zoneOut ?? null,
          r.ruleId ?? null,
          r.policyVersion ?? null,
          r.explanation ?? null,
          r.actor ?? null,
          r.note ?? null,
          r.annuls ?? null,
        )
    })
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
    if (draft.access || draft.manual || draft.annuls) describe(row, draft)
    this.queue.push({ row, access: draft.access, onDurable, onWithheld, at: performance.now() })
    if (this.scheduled === null)
      this.scheduled = schedule(() => this.flushQuietly(), this.deps.groupCommitDelayMs)
    return row
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
      const started = performance.now()
      this.commitQueue(batch)
      const ended = performance.now()
      this.commitLatencyUs.record(Math.max(1, Math.round((ended - started) * 1000)))
      if (this.deps.slowCommitMs !== undefined && ended - started > this.deps.slowCommitMs)
        this.lastSlowCommit = ended
    } catch (err) {
      this.stats.commitErrors++
      this.stats.failing = true
      this.deps.log.error({ err, queued: batch.length }, 'outbox commit failed; decisions withheld')
      this.expireWaiting()
      if (this.scheduled === null)
        this.scheduled = schedule(() => this.flushQuietly(), RETRY_FAILED_COMMIT_MS, { unref: true })
      throw new GateError('E_DB_WRITE', `outbox commit failed: ${(err as Error).message}`, { cause: err })
    }
    this.queue = []
    this.counts.pending += batch.length
    this.stats.commits++
    this.stats.failing = false
    this.stats.rowsWritten += batch.length
    for (const queued of batch) {
      try {
        queued.onDurable(queued.row)
      } catch (err) {
        this.deps.log.error({ err }, 'decision listener failed')
      }
    }
  }

  /** Stop retrying a failed commit (the agent is stopping; what is still queued was never emitted). */
  close(): void {
    cancel(this.scheduled)
    this.scheduled = null
  }

  /** Drop the decisions that have waited past maxWaitMs for the failing disk (oldest are first). */
  private expireWaiting(): void {
    const limit = performance.now() - (this.deps.maxWaitMs ?? DEFAULT_MAX_WAIT_MS)
    let count = 0
    while (count < this.queue.length && (this.queue[count] as Queued).at <= limit) count++
    if (count === 0) return
    const expired = this.queue.splice(0, count)
    this.stats.expired += count
    this.deps.log.warn({ expired: count }, 'decisions waited too long for the disk; dropped, never emitted')
    for (const queued of expired) {
      try {
        queued.onWithheld?.(queued.row)
      } catch (err) {
        this.deps.log.error({ err }, 'withheld listener failed')
      }
    }
  }

  /** flush(), for the timer: a failure is already logged and counted there, and retried. */
  private flushQuietly(): void {
    try {
      this.flush()
    } catch {
      // logged and counted in flush(); retried on the next append or timer
    }
  }
}
