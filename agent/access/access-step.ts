import type { Logger } from 'pino'
import { localTime } from '../../shared/access/calendar.js'
import { AccessEngine, describeVerdict } from '../../shared/access/engine.js'
import type { AccessPolicy } from '../../shared/access/policy.js'
import type { Checkin } from '../../shared/checkin.js'
import type { AccessNote } from '../../shared/control.js'
import { FLEET_SCHEMA_VERSION, type PassagePayload } from '../../shared/fleet.js'
import type { AccessStatus } from '../../shared/status.js'
import type { Clock } from '../clock.js'
import type { Verdict } from '../pipeline/validator.js'
import type { Db } from '../store/db.js'
import type { PolicyStore } from './policy-store.js'
import { TallyBook } from './tally-book.js'
import { ZoneLedger } from './zone-ledger.js'

/** other gates' passages remembered, to drop the ones delivered twice */
const HEARD_MAX = 10_000

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
  /** where this gate's passages are shared (the MQTT reporter, while it runs) */
  onShare: ((passage: PassagePayload) => void) | null = null
  /** ids of other gates' passages already heard */
  private readonly heard = new Set<string>()
  /** this gate's admits waiting to be seen through the gate (passage confirmation), by check-in id */
  private readonly awaiting = new Map<
    string,
    { participantId: string; zoneIn: string | null; zoneOut: string | null; wallMs: number }
  >()

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

  /** What `gatectl status` shows of the rules (null: no policy in force). */
  status(): AccessStatus | null {
    const engine = this.engine
    if (engine === null) return null
    const lane = engine.lane(this.deps.gateId)
    const report = this.tallies.report()
    return {
      policyVersion: engine.version,
      lane: lane ? { from: lane.from, to: lane.to } : null,
      // the zones this gate counted in, and those it was allotted places in before its first passage
      zones: [...new Set([...Object.keys(report), ...this.tallies.allottedZones()])].map((zone) => {
        const t = report[zone]
        return {
          zone,
          period: t?.period ?? this.tallies.allotment(zone)?.period ?? '',
          entries: t ? t.entries - t.annulled : 0,
          exits: t?.exits ?? 0,
          allotment: this.tallies.allotment(zone)?.limit ?? null,
        }
      }),
    }
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

  /**
   * Whether a participant this gate's lane let into its zone has left that zone since (through an
   * exit here or at another gate of the venue, learnt over the broker): their next arrival is a
   * re-entry for the rules to judge, not a badge lingering at the gate, which the re-entry window
   * would deny as already checked in.
   */
  leftZone(participantId: string): boolean {
    const engine = this.engine
    const zone = engine?.lane(this.deps.gateId)?.to ?? null
    if (engine === null || zone === null) return false
    const now = this.deps.clock.now()
    return !this.ledger.history(participantId, (z) => engine.period(z, now)).inside(zone)
  }

  /**
   * What a decision by hand changes (the rules are not asked): an admit passes this gate's lane,
   * leaving its `from` zone and entering its `to` zone; a check-out (`out`) passes it the other
   * way, out of its `to` zone (someone who left by a door with no gate, or whose exit was not
   * seen): the zone's occupancy drops, and the person may come back in. Undefined without a policy.
   */
  byHand(verdict: Verdict, direction: 'in' | 'out' = 'in'): AccessNote | undefined {
    const engine = this.engine
    if (engine === null) return undefined
    const lane = verdict.decision === 'admit' ? engine.lane(this.deps.gateId) : undefined
    if (direction === 'out')
      return {
        zoneIn: lane?.from ?? null,
        zoneOut: lane?.to ?? null,
        ruleId: null,
        explanation: 'checked out by hand',
        warnings: [],
        policyVersion: engine.version,
      }
    return {
      zoneIn: lane?.to ?? null,
      zoneOut: lane?.from ?? null,
      ruleId: null,
      explanation: null,
      warnings: [],
      policyVersion: engine.version,
    }
  }

  /**
   * A decision is durable: an admit that entered or left a zone goes into the ledger and this gate's
   * tallies, and is shared with the venue's other gates (`onShare`, over their broker).
   *
   * `awaitingPassage`: the gate waits to see the person go through (passage confirmation). The
   * entry counts at once (its place is held while they walk through), the exit only once
   * confirmed (a place freed by someone who then stayed inside could be given away twice).
   */
  committed(checkin: Checkin, access: AccessNote | undefined, awaitingPassage = false): void {
    if (checkin.participantId === null || checkin.decision !== 'admit' || access === undefined) return
    if (access.zoneIn === null && access.zoneOut === null) return
    if (awaitingPassage) {
      this.awaiting.set(checkin.id, {
        participantId: checkin.participantId,
        zoneIn: access.zoneIn,
        zoneOut: access.zoneOut,
        wallMs: checkin.ts,
      })
      this.recordPassage(checkin.participantId, access.zoneIn, null, checkin.ts, true)
    } else this.recordPassage(checkin.participantId, access.zoneIn, access.zoneOut, checkin.ts, true)
    this.share(checkin.id, checkin.participantId, access.zoneIn, access.zoneOut, checkin.ts, undefined)
  }

  /** The person of an admit awaiting passage went through: its exit counts now. */
  passed(admitId: string): void {
    const a = this.awaiting.get(admitId)
    if (a === undefined) return
    this.awaiting.delete(admitId)
    if (a.zoneOut !== null) this.recordPassage(a.participantId, null, a.zoneOut, a.wallMs, true)
  }

  /**
   * An admit annulled (`annul` is the durable record that annuls it): the person did not go
   * through, so its entry is not counted (the place is free again), it is not in the
   * participant's movements (they may try again at once), and the other gates are told.
   */
  annulled(admitId: string, annul: Checkin): void {
    const a = this.awaiting.get(admitId)
    if (a === undefined) return
    this.awaiting.delete(admitId)
    const engine = this.engine
    if (a.zoneIn !== null)
      this.tallies.annul(a.zoneIn, engine === null ? '' : engine.period(a.zoneIn, a.wallMs))
    this.ledger.undo(this.passage(a.participantId, a.zoneIn, null, a.wallMs), '')
    this.share(annul.id, a.participantId, a.zoneIn, a.zoneOut, annul.ts, admitId)
  }

  private share(
    id: string,
    participantId: string,
    zoneIn: string | null,
    zoneOut: string | null,
    ts: number,
    annuls: string | undefined,
  ): void {
    if (this.onShare === null) return
    const passage: PassagePayload = {
      v: FLEET_SCHEMA_VERSION,
      id,
      gateId: this.deps.gateId,
      participantId,
      zoneIn,
      zoneOut,
      ts,
      policyVersion: this.engine?.version ?? 0,
    }
    if (annuls !== undefined) passage.annuls = annuls
    this.onShare(passage)
  }

  /**
   * Another gate's passage, heard over the venue's broker: into the ledger (anti-passback and
   * entry counts hold across the gates of a zone), not into this gate's tallies (each gate reports
   * its own). Ignored: this gate's own, a gate the policy does not know (another event's, on the
   * same broker), and one already heard (QoS 1 may deliver twice).
   */
  learn(p: PassagePayload): boolean {
    const engine = this.engine
    if (engine === null || p.gateId === this.deps.gateId || engine.lane(p.gateId) === undefined) return false
    if (this.heard.has(p.id)) return false
    this.heard.add(p.id)
    if (this.heard.size > HEARD_MAX) this.heard.delete(this.heard.values().next().value as string)
    if (p.annuls !== undefined) {
      // that gate's admit was annulled: undone here too, if it was heard
      if (!this.heard.has(p.annuls)) return false
      const periodOut = p.zoneOut === null ? '' : engine.period(p.zoneOut, p.ts)
      this.ledger.undo(this.passage(p.participantId, p.zoneIn, p.zoneOut, p.ts), periodOut)
      return true
    }
    this.recordPassage(p.participantId, p.zoneIn, p.zoneOut, p.ts, false)
    return true
  }

  /**
   * Rebuild the ledger and tallies from the gate's own decisions in its SQLite file (the admits
   * that entered or left a zone, oldest first, and the records annulling some of them: an annulled
   * entry counts as entered and annulled, and is not in the ledger). An admit still awaiting its
   * passage when the agent stopped counts as passed: nothing says otherwise.
   */
  rebuild(db: Db): number {
    const rows = db
      .prepare(
        `SELECT id, participant_id AS participantId, zone_in AS zoneIn, zone_out AS zoneOut, wall_ms AS wallMs, annuls
           FROM checkins
          WHERE (zone_in IS NOT NULL OR zone_out IS NOT NULL) AND participant_id IS NOT NULL
            AND (decision = 'admit' OR annuls IS NOT NULL)
          ORDER BY seq_no`,
      )
      .all() as Array<{
      id: string
      participantId: string
      zoneIn: string | null
      zoneOut: string | null
      wallMs: number
      annuls: string | null
    }>
    const annulled = new Set(rows.map((r) => r.annuls).filter((id) => id !== null))
    const engine = this.engine
    for (const r of rows) {
      if (r.annuls !== null) continue
      if (!annulled.has(r.id)) this.recordPassage(r.participantId, r.zoneIn, r.zoneOut, r.wallMs, true)
      else if (r.zoneIn !== null) {
        const period = engine === null ? '' : engine.period(r.zoneIn, r.wallMs)
        this.tallies.entered(r.zoneIn, period)
        this.tallies.annul(r.zoneIn, period)
      }
    }
    return rows.length
  }

  private passage(participantId: string, zoneIn: string | null, zoneOut: string | null, wallMs: number) {
    const engine = this.engine
    return {
      participantId,
      zoneIn,
      zoneOut,
      period: zoneIn !== null && engine !== null ? engine.period(zoneIn, wallMs) : '',
      day: localTime(wallMs, engine?.timeZone ?? 'UTC').day,
    }
  }

  private recordPassage(
    participantId: string,
    zoneIn: string | null,
    zoneOut: string | null,
    wallMs: number,
    own: boolean,
  ): void {
    const engine = this.engine
    const tz = engine?.timeZone ?? 'UTC'
    const period = (zone: string) => (engine === null ? '' : engine.period(zone, wallMs))
    if (own && zoneIn !== null) this.tallies.entered(zoneIn, period(zoneIn))
    if (own && zoneOut !== null) this.tallies.left(zoneOut, period(zoneOut))
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
