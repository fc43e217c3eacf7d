import type { Logger } from 'pino'
import { localTime } from '../../shared/access/calendar.js'
import { AccessEngine, describeVerdict } from '../../shared/access/engine.js'
import type { AccessPolicy } from '../../shared/access/policy.js'
import type { AccessNote } from '../../shared/control.js'
import type { Clock } from '../clock.js'
import type { Verdict } from '../pipeline/validator.js'
import type { Db } from '../store/db.js'
import type { PolicyStore } from './policy-store.js'
import { TallyBook } from './tally-book.js'
import { ZoneLedger } from './zone-ledger.js'

/** A roster verdict after the access rules: possibly turned into a denial, with what it changes. */
export interface AccessedVerdict extends Verdict {
  access?: AccessNote
}

/**
 * The access rules at the gate: after the roster has admitted a badge, the event's policy decides
 * whether this participant may pass this gate now (shared/access/engine.ts), against what this
 * gate's ledger knows of their movements. Without a policy the roster's verdict stands, as it
 * always has. A new policy pulled from the cloud takes effect for the next arrival.
 */
export class AccessStep {
  private engine: AccessEngine | null = null
  readonly ledger = new ZoneLedger()
  readonly tallies: TallyBook

  constructor(
    private readonly deps: { gateId: string; clock: Clock; log: Logger; policies: PolicyStore; db: Db },
  ) {
    this.tallies = new TallyBook(deps.db)
    this.use(deps.policies.get())
    deps.policies.onChange((policy) => this.use(policy))
  }

  /** The policy in force (null: none). */
  policy(): AccessPolicy | null {
    return this.engine?.policy ?? null
  }

  /** The policy version in force (0: none). */
  version(): number {
    return this.engine?.version ?? 0
  }

  /** Apply the rules to a roster verdict (only admits of a known participant can change). */
  apply(verdict: Verdict): AccessedVerdict {
    const engine = this.engine
    if (engine === null || verdict.decision !== 'admit' || verdict.participantId === null) return verdict
    const now = this.deps.clock.now()
    const participantId = verdict.participantId
    const v = engine.evaluate({
      gateId: this.deps.gateId,
      holder: { participantId, category: verdict.category ?? null, tags: verdict.tags ?? [] },
      history: this.ledger.history(participantId, (zone) => engine.period(zone, now)),
      // a zone with a capacity: what the cloud allotted this gate, less what it has let in
      placesLeft: (zone) =>
        engine.zone(zone)?.capacity === undefined
          ? null
          : this.tallies.placesLeft(zone, engine.period(zone, now)),
      now,
    })
    const access: AccessNote = {
      zoneIn: v.enters,
      zoneOut: v.leaves,
      ruleId: v.ruleId,
      explanation: v.explanation,
      warnings: v.warnings,
      policyVersion: engine.version,
    }
    if (v.decision === 'deny') {
      this.deps.log.info(
        { participantId, gateId: this.deps.gateId, rule: v.ruleId },
        `access denied: ${describeVerdict(v)}`,
      )
      return { ...verdict, decision: 'deny', reason: v.reason, access }
    }
    return { ...verdict, access }
  }

  /** A decision is durable: an admit that entered or left a zone goes into the ledger. */
  committed(
    participantId: string | null,
    decision: 'admit' | 'deny',
    access: AccessNote | undefined,
    wallMs: number,
  ): void {
    if (participantId === null || decision !== 'admit' || access === undefined) return
    this.recordPassage(participantId, access.zoneIn, access.zoneOut, wallMs)
  }

  /**
   * Rebuild the ledger from the gate's own decisions in its SQLite file (the admits that entered or
   * left a zone, oldest first).
   */
  rebuild(db: Db): number {
    const rows = db
      .prepare(
        `SELECT participant_id AS participantId, zone_in AS zoneIn, zone_out AS zoneOut, wall_ms AS wallMs
           FROM checkins
          WHERE (zone_in IS NOT NULL OR zone_out IS NOT NULL) AND decision = 'admit' AND participant_id IS NOT NULL
          ORDER BY seq_no`,
      )
      .all() as Array<{
      participantId: string
      zoneIn: string | null
      zoneOut: string | null
      wallMs: number
    }>
    for (const r of rows) this.recordPassage(r.participantId, r.zoneIn, r.zoneOut, r.wallMs)
    return rows.length
  }

  private recordPassage(
    participantId: string,
    zoneIn: string | null,
    zoneOut: string | null,
    wallMs: number,
  ): void {
    const engine = this.engine
    const tz = engine?.timeZone ?? 'UTC'
    const period = (zone: string) => (engine === null ? '' : engine.period(zone, wallMs))
    if (zoneIn !== null) this.tallies.entered(zoneIn, period(zoneIn))
    if (zoneOut !== null) this.tallies.left(zoneOut, period(zoneOut))
    this.ledger.record({
      participantId,
      zoneIn,
      zoneOut,
      period: zoneIn !== null ? period(zoneIn) : '',
      day: localTime(wallMs, tz).day,
    })
  }

  private use(policy: AccessPolicy | null): void {
    this.engine = policy === null ? null : new AccessEngine(policy)
    if (policy !== null) {
      const lane = this.engine?.lane(this.deps.gateId)
      this.deps.log.info(
        { policyVersion: policy.version, lane: lane ?? null },
        lane
          ? 'access policy in force'
          : 'access policy in force, but it gives this gate no lane: every entry is denied',
      )
    }
  }
}
