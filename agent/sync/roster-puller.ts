import type { Logger } from 'pino'
import type { PolicyStore } from '../access/policy-store.js'
import type { Clock } from '../clock.js'
import type { RosterStore } from '../store/roster-store.js'
import { backoffMs } from './backoff.js'
import type { CloudClient } from './cloud-client.js'

/** What the roster puller reports (`gatectl sync`). */
export interface RosterPullerState {
  /** the last cloud change applied (kept in the roster store) */
  cursor: number
  lastPullAt: number | null
  lastError: string | null
  /** changes applied since start */
  applied: number
}

/**
 * Pulls roster changes (revocations included) from the cloud every `intervalMs` and applies them to
 * the SQLite roster, which invalidates exactly the L1 entries that changed: a badge revoked in the
 * cloud is denied at the gate within one interval. Conditional requests make an unchanged roster
 * cost one small 304.
 */
export class RosterPuller {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private stopped = true
  private etag: string | null = null
  private policyEtag: string | null = null
  private failures = 0
  private readonly progress: Omit<RosterPullerState, 'cursor'>

  constructor(
    private readonly deps: {
      roster: RosterStore
      /** where the event's access policy is kept (pulled after the roster, each pass) */
      policies?: PolicyStore | null | undefined
      client: CloudClient
      clock: Clock
      log: Logger
      intervalMs: number
      maxBackoffMs: number
    },
  ) {
    this.progress = { lastPullAt: null, lastError: null, applied: 0 }
  }

  start(): void {
    this.stopped = false
    this.schedule(0)
  }

  async stop(graceMs = 2_000): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    if (this.running) await Promise.race([this.running, new Promise((r) => setTimeout(r, graceMs).unref())])
  }

  status(): RosterPullerState {
    return { ...this.progress, cursor: this.deps.roster.cloudCursor() }
  }

  /** Pull now, until the cloud has nothing more. */
  async pullNow(): Promise<RosterPullerState> {
    await this.running
    await this.pass()
    return this.status()
  }

  private schedule(ms: number): void {
    if (this.stopped) return
    if (this.timer) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = null
      void this.pass()
    }, ms)
    this.timer.unref()
  }

  private pass(): Promise<void> {
    if (this.running) return this.running
    this.running = this.pullAll()
      .then((delay) => this.schedule(delay))
      .catch((err) => {
        this.progress.lastError = String(err)
        this.deps.log.error({ err }, 'roster pull failed')
        this.schedule(this.deps.maxBackoffMs)
      })
      .finally(() => {
        this.running = null
      })
    return this.running
  }

  private async pullAll(): Promise<number> {
    const { roster, client, clock, log, intervalMs, maxBackoffMs } = this.deps
    for (let page = 0; page < 1_000; page++) {
      const cursor = roster.cloudCursor()
      const res = await client.fetchRoster(cursor, this.etag)
      if (this.stopped) return intervalMs
      if (!res.ok) {
        this.failures++
        this.progress.lastError = res.message
        const backoff = backoffMs(this.failures, Math.min(intervalMs, 1_000), maxBackoffMs)
        // a 429 or 503 says when to come back: not before (the cloud is shedding load), nor much later
        const retryAfter = res.kind === 'retry' ? res.retryAfterMs : undefined
        const delay =
          retryAfter === undefined ? backoff : Math.min(maxBackoffMs, Math.max(retryAfter, backoff))
        log.warn(
          { err: res.message, retryInMs: delay },
          'roster pull failed; admitting on the roster as it is',
        )
        return delay
      }
      this.failures = 0
      this.progress.lastError = null
      this.progress.lastPullAt = clock.now()
      this.etag = res.value.etag
      const delta = res.value.delta
      if (!delta) break
      if (delta.changes.length > 0 || delta.cursor !== cursor) {
        const result = roster.applyDelta(delta.changes, delta.cursor)
        this.progress.applied += result.changed
        if (result.changed > 0)
          log.info(
            { changed: result.changed, cursor: delta.cursor, rosterVersion: result.version },
            'roster changes applied',
          )
      }
      if (!delta.more) break
    }
    await this.pullPolicy()
    return intervalMs
  }

  /**
   * The event's access policy, after the roster (so that a rule naming a new category finds its
   * participants already there). A policy is replaced only by a newer version: an answer from a
   * node that has not seen the latest write yet cannot roll the gate back.
   */
  private async pullPolicy(): Promise<void> {
    const { policies, client, log } = this.deps
    if (!policies || this.stopped) return
    const res = await client.fetchPolicy(this.policyEtag)
    if (!res.ok) {
      log.warn({ err: res.message }, 'access policy pull failed; deciding by the policy in force')
      return
    }
    this.policyEtag = res.value.etag
    if (!res.value.changed) return
    const next = res.value.policy
    const current = policies.version()
    if (next === null) {
      if (current !== 0) {
        log.warn(
          { policyVersion: current },
          'the cloud has no access policy for this event any more; deciding without one',
        )
        policies.set(null)
      }
      return
    }
    if (next.version <= current) return
    policies.set(next)
    log.info({ policyVersion: next.version, was: current }, 'access policy updated')
  }
}
