import type { Checkin } from '../../shared/checkin.js'
import type { Decision, DenyReason } from './types.js'

interface Remembered {
  decision: Decision
  reason: DenyReason | null
  /** monotonic ms of the decision that opened the window */
  at: number
  rosterVersion: number
  /** an "already checked in" denial was already recorded in this window */
  repeatRecorded: boolean
}

/** What to do with a badge that just arrived at the gate. */
export type DedupVerdict =
  /** no decision in the window: validate against the roster */
  | { kind: 'validate' }
  /** admitted earlier in the window: deny as already checked in (recorded once per window) */
  | { kind: 'already_checked_in' }
  /** the remembered decision stands; nothing new to record */
  | { kind: 'suppress'; decision: Decision; reason: DenyReason | null }

/**
 * Dedup and re-entry: one check-in per token per window. Within the window a second arrival of an
 * admitted badge is denied once as already checked in, and later arrivals are suppressed; a denied badge
 * stays denied unless the roster changed since. After the window a new arrival is a re-entry and is
 * validated again. Memory holds only decisions inside the window (bounded by `maxEntries`); it is rebuilt
 * from the outbox at start so a restart does not forget who is in.
 */
export class Dedup {
  // a few dozen bytes per token: a gate of 100,000 participants holds every one admitted within the
  // window, so the entry keeps no participant id (the roster names them for an "already checked
  // in" record) and nothing else the decision carried
  private readonly mem = new Map<string, Remembered>()
  suppressed = 0

  constructor(
    private readonly windowMs: number,
    private readonly maxEntries = 200_000,
  ) {}

  /** Decide what an arrival at monotonic time `now` means, given the current roster version. */
  check(token: string, now: number, rosterVersion: number): DedupVerdict {
    const remembered = this.mem.get(token)
    if (remembered === undefined) return { kind: 'validate' }
    if (now - remembered.at >= this.windowMs) {
      this.mem.delete(token)
      return { kind: 'validate' }
    }
    if (remembered.decision === 'admit') {
      if (!remembered.repeatRecorded) {
        remembered.repeatRecorded = true
        return { kind: 'already_checked_in' }
      }
    } else if (remembered.rosterVersion !== rosterVersion) {
      this.mem.delete(token)
      return { kind: 'validate' }
    }
    this.suppressed++
    return { kind: 'suppress', decision: remembered.decision, reason: remembered.reason }
  }

  /** Remember a fresh roster decision (not the "already checked in" repeat, which keeps the window). */
  remember(
    token: string,
    decided: {
      decision: Decision
      reason: DenyReason | null
      rosterVersion: number
    },
    now: number,
  ): void {
    if (this.windowMs === 0) return
    this.mem.delete(token)
    if (this.mem.size >= this.maxEntries) this.dropExpired(now)
    if (this.mem.size >= this.maxEntries) {
      const oldest = this.mem.keys().next()
      if (!oldest.done) this.mem.delete(oldest.value)
    }
    // the fields kept, named: a spread would keep whatever else the verdict carries (the holder's
    // id and tags, the access note) for every token of the window
    this.mem.set(token, {
      decision: decided.decision,
      reason: decided.reason,
      rosterVersion: decided.rosterVersion,
      at: now,
      repeatRecorded: false,
    })
  }

  /**
   * Rebuild memory from decisions recorded in the outbox, oldest first. `ageMs`, when given, is how
   * long ago a decision was made by the machine's monotonic clock (agent/store/recent-decisions.ts);
   * otherwise the wall clock dates it, and a decision "in the future" says the wall clock went back
   * (a Pi without a real-time clock, before NTP): it is not believed, so a wrong clock cannot make
   * the window last for years.
   */
  restore(
    rows: ReadonlyArray<Checkin & { ageMs?: number | null }>,
    wallNow: number,
    monoNow: number,
  ): number {
    for (const decision of rows) {
      const age = decision.ageMs ?? (decision.ts > wallNow ? null : wallNow - decision.ts)
      if (age === null || age >= this.windowMs) continue
      const at = monoNow - age
      if (decision.reason === 'already_checked_in') {
        const remembered = this.mem.get(decision.token)
        if (remembered) remembered.repeatRecorded = true
        continue
      }
      this.remember(decision.token, decision, at)
    }
    return this.mem.size
  }

  /** Forget the decision remembered for `token` at monotonic time `at` (one that was never made). */
  forget(token: string, at: number): void {
    if (this.mem.get(token)?.at === at) this.mem.delete(token)
  }

  /** Forget what was remembered for `token` (its next arrival is validated again). */
  drop(token: string): void {
    this.mem.delete(token)
  }

  /** Forget decisions older than the window. */
  dropExpired(now: number): void {
    for (const [token, remembered] of this.mem) {
      if (now - remembered.at >= this.windowMs) this.mem.delete(token)
    }
  }

  size(): number {
    return this.mem.size
  }
}
