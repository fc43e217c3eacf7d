// The syncer's pass, its lanes and its reading of each answer of the cloud all move one state (the
// progress status() reports, the batch size, the back-off): kept together, every transition of
// that state is in this file. The claims and their recording are the outbox's (store/claims.ts).
import type { Logger } from 'pino'
import type { SyncResult } from '../../shared/sync.js'
import { type Clock, cancel, type Scheduled, schedule } from '../clock.js'
import type { Claim } from '../store/claims.js'
import { type Db, getMeta } from '../store/db.js'
import type { Outbox } from '../store/outbox.js'
import { backoffMs } from './backoff.js'
import type { CloudClient, CloudOutcome } from './cloud-client.js'

/** How the syncer paces itself. */
export interface SyncerConfig {
  /** records per batch */
  batchSize: number
  /** batches in flight at once while a backlog drains (1 when there is none) */
  concurrency: number
  /** wait this long when nothing is pending, ms */
  intervalMs: number
  /** first retry delay, ms (doubles per failure, with jitter) */
  baseBackoffMs: number
  /** longest retry delay, ms */
  maxBackoffMs: number
}

/** What the syncer reports (`gatectl sync`). */
export interface SyncerState {
  state: 'idle' | 'syncing' | 'backoff' | 'auth-failed'
  lastAttemptAt: number | null
  lastSuccessAt: number | null
  lastError: string | null
  consecutiveFailures: number
  nextAttemptAt: number | null
  batchSize: number
  accepted: number
  duplicates: number
  rejected: number
  /** the cloud's clock minus this gate's, from the last answer (midpoint of the round trip), ms */
  clockOffsetMs: number | null
  /** a backlog drain is down to one batch at a time because decisions' commits were slow */
  yielding: boolean
  /** times the drain went down to one batch at a time */
  yields: number
}

/** While yielding, the held-back lanes look again this often, ms. */
const YIELD_RECHECK_MS = 250

/**
 * Sends the outbox to the cloud. Rows are claimed (pending -> in flight), sent, and marked synced
 * only for the ids the cloud says it holds; anything else goes back to pending. A crash between send
 * and mark resends the batch, which the cloud counts as duplicates. Failures back off exponentially
 * with jitter and honour Retry-After; admitting never waits for the cloud. A backlog is drained batch
 * after batch, yielding to the event loop in between so live scanning is never starved.
 */
export class Syncer {
  private timer: Scheduled | null = null
  private running: Promise<void> | null = null
  private stopped = true
  /** what status() reports but `yielding`, which is derived from the lanes held back */
  private readonly progress: Omit<SyncerState, 'yielding'>
  /** lanes of the current pass held back because decisions commit slowly */
  private heldBack = 0

  constructor(
    private readonly deps: {
      db: Db
      outbox: Outbox
      client: CloudClient
      clock: Clock
      log: Logger
      gateId: string
      config: SyncerConfig
      random?: () => number
      /**
       * true while decisions are being slowed down (their commits wait for a contended disk): a backlog
       * drain then sends one batch at a time instead of `concurrency`
       */
      yieldNow?: () => boolean
    },
  ) {
    const last = getMeta(deps.db, 'last_sync_at')
    this.progress = {
      state: 'idle',
      lastAttemptAt: null,
      lastSuccessAt: last ? Number(last) : null,
      lastError: null,
      consecutiveFailures: 0,
      nextAttemptAt: null,
      batchSize: deps.config.batchSize,
      accepted: 0,
      clockOffsetMs: null,
      duplicates: 0,
      rejected: 0,
      yields: 0,
    }
  }

  start(): void {
    this.stopped = false
    this.schedule(0)
  }

  /** Stop; an upload in flight is not waited for beyond `graceMs` (its rows stay in flight and are resent after restart). */
  async stop(graceMs = 2_000): Promise<void> {
    this.stopped = true
    this.clearTimer()
    if (this.running) await Promise.race([this.running, new Promise((r) => setTimeout(r, graceMs).unref())])
  }

  status(): SyncerState {
    return { ...this.progress, yielding: this.heldBack > 0 }
  }

  /** Try now (a technician's `gatectl sync now`), forgetting any back-off. Resolves after one pass. */
  async syncNow(): Promise<SyncerState> {
    if (this.stopped) return this.status()
    await this.running
    this.clearTimer()
    this.progress.consecutiveFailures = 0
    await this.pass()
    return this.status()
  }

  private clearTimer(): void {
    cancel(this.timer)
    this.timer = null
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return
    this.clearTimer()
    this.progress.nextAttemptAt = this.deps.clock.now() + delayMs
    const run = () => {
      this.timer = null
      void this.pass()
    }
    // a backlog continues on the next turn of the event loop: decisions and adverts go first
    this.timer = schedule(run, delayMs, { unref: true })
  }

  private pass(): Promise<void> {
    if (this.running) return this.running
    // one batch when the buffer is small; several in flight while a backlog drains
    const lanes =
      this.deps.outbox.pending() > this.progress.batchSize ? Math.max(1, this.deps.config.concurrency) : 1
    // each lane goes on with its next batch as soon as its own answer is in (a lane waiting for the
    // slowest of the others would leave the cloud idle); each batch starts on a fresh turn of the
    // event loop, so decisions and adverts go first
    // a drain yields to decisions: while their commits are slow, lanes after the first wait
    const lane = async (i: number): Promise<number> => {
      for (;;) {
        if (i > 0 && (await this.heldBackUntilFast())) return 0
        if (this.stopped) return this.deps.config.intervalMs
        const delay = await this.sendOne()
        if (delay > 0 || this.stopped) return delay
        await new Promise((r) => setImmediate(r))
      }
    }
    this.running = Promise.all(Array.from({ length: lanes }, (_, i) => lane(i)))
      .then((delays) => this.schedule(Math.max(...delays)))
      .catch((err) => {
        this.deps.log.error({ err }, 'sync pass failed')
        this.schedule(this.failureDelay())
      })
      .finally(() => {
        this.running = null
      })
    return this.running
  }

  /**
   * Hold a lane back while decisions commit slowly. Resolves true when the backlog is gone meanwhile
   * (the lane has nothing left to send and the pass must end), false when the lane may go on.
   */
  private async heldBackUntilFast(): Promise<boolean> {
    const slow = this.deps.yieldNow
    if (!slow?.()) return false
    if (this.heldBack++ === 0) this.progress.yields++
    try {
      while (!this.stopped && slow()) {
        if (this.deps.outbox.pending() <= this.progress.batchSize) return true
        await new Promise((r) => setTimeout(r, YIELD_RECHECK_MS))
      }
      return false
    } finally {
      this.heldBack--
    }
  }

  private failureDelay(retryAfterMs?: number): number {
    const { baseBackoffMs, maxBackoffMs } = this.deps.config
    const backoff = backoffMs(
      this.progress.consecutiveFailures,
      baseBackoffMs,
      maxBackoffMs,
      this.deps.random,
    )
    return retryAfterMs === undefined ? backoff : Math.min(maxBackoffMs, Math.max(retryAfterMs, backoff))
  }

  /** One batch. Returns the delay before the next pass, ms. */
  private async sendOne(): Promise<number> {
    const { outbox, client, clock, log, gateId, config } = this.deps
    const claim = await outbox.claim(this.progress.batchSize)
    if (claim.count === 0) {
      this.progress.state = this.progress.state === 'auth-failed' ? 'auth-failed' : 'idle'
      return config.intervalMs
    }
    this.progress.state = 'syncing'
    this.progress.lastAttemptAt = clock.now()
    const sentAt = clock.now()
    let res: CloudOutcome<SyncResult>
    try {
      res = await client.sendBatch(gateId, sentAt, claim.json)
    } catch (err) {
      // a client that throws instead of answering: the rows are claimed again, not left in flight
      outbox.release(claim)
      throw err
    }
    // stopped while the batch was on the wire: the claim is only in memory, so its rows are pending
    // at the next start and the cloud counts the resend as duplicates
    if (this.stopped) return config.intervalMs
    if (!res.ok && res.kind === 'refused') return this.refused(claim, res)
    if (res.ok) {
      this.progress.clockOffsetMs = Math.round(res.value.serverTime - (sentAt + clock.now()) / 2)
      // only this claim's rows are marked, whatever ids the answer names; rows it does not mention
      // are claimed again
      const { refused } = await outbox.recordSync(claim, res.value.stored, res.value.rejected)
      if (refused > 0) {
        log.warn(
          { rejected: refused, reasons: [...new Set(res.value.rejected.map((r) => r.reason))] },
          'the cloud refused check-ins; kept on the gate',
        )
      }
      this.progress.accepted += res.value.accepted
      this.progress.duplicates += res.value.duplicates
      this.progress.rejected += refused
      this.progress.state = 'idle'
      this.progress.lastSuccessAt = clock.now()
      this.progress.lastError = null
      this.progress.consecutiveFailures = 0
      this.progress.batchSize = Math.min(config.batchSize, this.progress.batchSize * 2)
      return claim.count >= this.progress.batchSize ? 0 : config.intervalMs
    }
    outbox.release(claim)
    this.progress.lastError = res.message
    this.progress.consecutiveFailures++
    switch (res.kind) {
      case 'too-large':
        if (claim.count > 1) {
          this.progress.batchSize = Math.max(
            1,
            Math.min(this.progress.batchSize, Math.floor(claim.count / 2)),
          )
          log.warn({ batchSize: this.progress.batchSize }, 'batch too large for the cloud; halving it')
          return 0
        }
        // one record is too large: the limit in front of the cloud is wrong, not the record
        this.progress.state = 'backoff'
        log.error({ err: res.message }, 'the cloud refuses even one record as too large; will retry')
        return this.failureDelay()
      case 'auth':
        this.progress.state = 'auth-failed'
        log.error(
          { err: res.message },
          'the cloud refused this gate key (check GATE_KEY; `gate-cloud gates rotate`)',
        )
        return config.maxBackoffMs
      default: {
        this.progress.state = 'backoff'
        const delay = this.failureDelay(res.kind === 'retry' ? res.retryAfterMs : undefined)
        log.warn(
          { err: res.message, retryInMs: delay, failures: this.progress.consecutiveFailures },
          'sync failed; will retry',
        )
        return delay
      }
    }
  }

  /**
   * A 400: the cloud stored nothing of the batch. The records it names are kept on the gate as
   * refused (with the cloud's reason; `gatectl sync resend-refused` sends them again) and the rest
   * are sent again at once; when it names none, the batch is halved until the record at fault is
   * alone. One malformed record never holds back the ones behind it.
   */
  private async refused(
    claim: Claim,
    res: { status: number; message: string; problems: ReadonlyArray<{ index: number; message: string }> },
  ): Promise<number> {
    const { outbox, log } = this.deps
    this.progress.lastError = res.message
    if (res.status !== 400) {
      // another 4xx (a proxy's 404, ...) says nothing about the records: kept and retried later
      outbox.release(claim)
      this.progress.consecutiveFailures++
      this.progress.state = 'backoff'
      const delay = this.failureDelay()
      log.warn({ err: res.message, retryInMs: delay }, 'the cloud refused the upload; will retry')
      return delay
    }
    const records = claim.records
    const atFault = new Map<string, string>()
    for (const problem of res.problems) {
      const record = records[problem.index]
      if (record && !atFault.has(record.id)) atFault.set(record.id, `malformed: ${problem.message}`)
    }
    const only = records[0]
    if (atFault.size === 0 && claim.count === 1 && only)
      atFault.set(only.id, `malformed: ${res.message.slice(0, 200)}`)
    if (atFault.size > 0) {
      const reasons = [...atFault].map(([id, reason]) => ({ id, reason }))
      const { refused } = await outbox.recordSync(claim, [], reasons)
      if (refused > 0) {
        this.progress.rejected += refused
        log.warn(
          { refused, reason: reasons[0]?.reason },
          'the cloud refused check-ins as malformed; kept on the gate (gatectl sync resend-refused)',
        )
        return 0
      }
    } else {
      outbox.release(claim)
      if (claim.count > 1) {
        this.progress.batchSize = Math.max(1, Math.min(this.progress.batchSize, Math.floor(claim.count / 2)))
        log.warn(
          { err: res.message, batchSize: this.progress.batchSize },
          'the cloud refused a batch without naming a record; halving it to find the record',
        )
        return 0
      }
    }
    this.progress.consecutiveFailures++
    this.progress.state = 'backoff'
    return this.failureDelay()
  }
}
