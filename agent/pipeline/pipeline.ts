import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import type { Checkin } from '../../shared/checkin.js'
import type { AccessNote, DecisionEvent, SightingEvent } from '../../shared/control.js'
import { GateError } from '../../shared/errors.js'
import type { AccessedVerdict, AccessStep } from '../access/access-step.js'
import type { Advert } from '../ble/source.js'
import type { Clock } from '../clock.js'
import type { PipelineCounters } from '../metrics.js'
import { RateMeter } from '../metrics.js'
import type { DecisionSink } from '../store/group-commit.js'
import type { Dedup, DedupVerdict } from './dedup.js'
import type { Proximity } from './proximity.js'
import type { Sighting } from './types.js'
import type { Validator, Verdict } from './validator.js'

/** The decoder as the pipeline sees it (see agent/decode/token-decoder.ts). */
export interface AdvertDecoder {
  decode(advert: Advert): Sighting | null
}

/** Events of the pipeline: 'decision' after a check-in is durable; 'sighting' and 'advert' only when listened to. */
export interface PipelineEvents {
  decision: [DecisionEvent]
  sighting: [SightingEvent]
  advert: [Advert]
}

/** Everything the pipeline needs, passed as one typed object. */
export interface PipelineDeps {
  decoder: AdvertDecoder
  proximity: Proximity
  dedup: Dedup
  validator: Validator
  /** the event's access rules, after the roster (none: the roster's verdict stands) */
  access?: AccessStep
  /**
   * passage confirmation: each admit waits for the actuator to see the person through, and is
   * annulled (`annul`) when it does not
   */
  confirmPassage?: boolean
  /** where decisions are made durable before they are emitted (the outbox) */
  decisions: DecisionSink
  clock: Clock
  counters: PipelineCounters
  log: Logger
}

/**
 * Where a BLE advert becomes a check-in: decode -> proximity -> dedup -> validate -> outbox (durable)
 * -> emit. `handleAdvert` is the hot path: it never throws and allocates little for adverts that are
 * not ours.
 */
export class Pipeline extends EventEmitter<PipelineEvents> {
  readonly advertRate = new RateMeter(10)

  constructor(private readonly deps: PipelineDeps) {
    super()
  }

  /** Feed one advert from a source. */
  handleAdvert = (advert: Advert): void => {
    const { counters } = this.deps
    counters.adverts++
    this.advertRate.mark(advert.ts)
    if (this.listenerCount('advert') > 0) this.emit('advert', advert)
    // no usable RSSI (HCI reports 127 for "not available"): nothing says the badge is at the gate,
    // and a check-in's RSSI must be a real reading (-127..20 dBm, as the cloud checks it)
    if (!(advert.rssi >= -127 && advert.rssi <= 20)) return
    let sighting: Sighting | null
    try {
      sighting = this.deps.decoder.decode(advert)
    } catch (err) {
      this.deps.log.debug({ err }, 'decoder threw; advert dropped')
      return
    }
    if (sighting === null) return
    counters.sightings++
    const arrived = this.deps.proximity.observe(sighting)
    if (this.listenerCount('sighting') > 0) this.emitSighting(sighting)
    if (!arrived) return
    counters.arrivals++
    this.decide(sighting)
  }

  private decide(sighting: Sighting): void {
    const { dedup, validator, counters } = this.deps
    let dedupVerdict = dedup.check(sighting.token, sighting.ts, validator.version())
    // someone admitted into the zone who has left it since comes back: a re-entry, not a lingering
    // badge; the rules judge it (re-entry allowed, entries per day, anti-passback)
    if (dedupVerdict.kind !== 'validate' && this.deps.access && this.rememberedAdmit(dedupVerdict)) {
      const participantId = validator.participantOf(sighting.token)
      if (participantId !== null && this.deps.access.leftZone(participantId)) {
        dedup.drop(sighting.token)
        dedupVerdict = { kind: 'validate' }
      }
    }
    let verdict: Verdict
    if (dedupVerdict.kind === 'suppress') {
      counters.suppressed++
      return
    }
    if (dedupVerdict.kind === 'already_checked_in') {
      verdict = {
        decision: 'deny',
        reason: 'already_checked_in',
        participantId: validator.participantOf(sighting.token),
        rosterVersion: validator.version(),
      }
    } else {
      verdict = validator.validate(sighting.token)
      if (this.deps.access) verdict = this.deps.access.apply(verdict)
      // remembered only once it is recorded: a withheld decision (the disk failing) was never made
      if (this.record(sighting, verdict)) dedup.remember(sighting.token, verdict, sighting.ts)
      return
    }
    this.record(sighting, verdict)
  }

  private rememberedAdmit(v: DedupVerdict): boolean {
    return v.kind === 'already_checked_in' || (v.kind === 'suppress' && v.decision === 'admit')
  }

  /** Buffer the decision for its durable commit; false when it is withheld. */
  private record(sighting: Sighting, verdict: AccessedVerdict): boolean {
    const advertTs = sighting.ts
    const access = verdict.access
    try {
      this.deps.decisions.append(
        {
          token: sighting.token,
          participantId: verdict.participantId,
          decision: verdict.decision,
          reason: verdict.reason,
          rssi: sighting.rssi,
          rosterVersion: verdict.rosterVersion,
          monoMs: advertTs,
          access,
        },
        (checkin) => {
          this.deps.access?.committed(checkin, access, this.deps.confirmPassage === true)
          this.emitDecision(checkin, advertTs, access)
        },
        () => this.withheld(sighting),
      )
      return true
    } catch (err) {
      this.deps.counters.withheld++
      this.deps.log.error({ err, token: sighting.token }, 'decision could not be buffered; withheld')
      return false
    }
  }

  /**
   * A technician's decision (gatectl admit|deny|checkout, or the cloud's console through a fleet
   * command): recorded like any other, with who made it and why, and emitted once durable (an
   * admit opens the gate as any admit does; a check-out opens nothing: the person is already out).
   * The access rules are not asked, but an admit is a passage through this gate's lane all the
   * same: it counts in the zone's occupancy and the participant's movements (a check-out the other
   * way, out of the lane's zone). An admit needs a participant of the roster; a deny may name any
   * token (a badge the roster does not know, turned away at the door).
   */
  decideByHand(req: {
    token: string
    decision: 'admit' | 'deny'
    actor: string
    note: string
    /** `out`: a check-out by hand (an admit out of this gate's zone) */
    direction?: 'in' | 'out'
  }): Promise<Checkin> {
    const { validator, dedup, clock } = this.deps
    const token = req.token.toLowerCase()
    const roster = validator.validate(token)
    if (req.decision === 'admit' && roster.participantId === null)
      throw new GateError(
        'E_INPUT',
        `no participant has token ${token} in this gate's roster; nothing recorded`,
      )
    const verdict: Verdict = {
      decision: req.decision,
      reason: req.decision === 'admit' ? null : 'by_hand',
      participantId: roster.participantId,
      rosterVersion: roster.rosterVersion,
    }
    const direction = req.direction ?? 'in'
    const access = this.deps.access?.byHand(verdict, direction)
    if (direction === 'out' && !access?.zoneOut)
      throw new GateError(
        'E_INPUT',
        "this gate's lane enters no zone (no access policy, or no lane for this gate): nothing to check out of",
      )
    const mono = clock.mono()
    return new Promise<Checkin>((resolve, reject) => {
      this.deps.decisions.append(
        {
          token,
          participantId: verdict.participantId,
          decision: verdict.decision,
          reason: verdict.reason,
          // no radio reading: the floor of the scale
          rssi: -127,
          rosterVersion: verdict.rosterVersion,
          monoMs: mono,
          access,
          manual: { actor: req.actor, note: req.note },
        },
        (checkin) => {
          dedup.remember(token, verdict, mono)
          this.deps.access?.committed(checkin, access, this.deps.confirmPassage === true)
          this.emitDecision(checkin, mono, access, direction === 'out')
          resolve(checkin)
        },
        () =>
          reject(
            new GateError('E_DB_WRITE', 'the database did not accept the decision in time; nothing recorded'),
          ),
      )
    })
  }

  /**
   * An admit the person did not go through (passage confirmation: the actuator did not see them
   * pass in time): a record annulling it is made durable (a denial, `not_passed`, naming the
   * admit), its entry stops counting, and the badge may try again at once.
   */
  annul(admit: DecisionEvent): void {
    if (admit.decision !== 'admit' || admit.annuls !== undefined) return
    const mono = this.deps.clock.mono()
    const access: AccessNote | undefined = admit.access && {
      ...admit.access,
      explanation: 'not seen through the gate in time; the admit is annulled',
      warnings: [],
    }
    try {
      this.deps.decisions.append(
        {
          token: admit.token,
          participantId: admit.participantId,
          decision: 'deny',
          reason: 'not_passed',
          rssi: admit.rssi,
          rosterVersion: admit.rosterVersion,
          monoMs: mono,
          access,
          annuls: admit.id,
        },
        (checkin) => {
          this.deps.dedup.forget(admit.token, admit.monoMs)
          this.deps.access?.annulled(admit.id, checkin)
          this.emitDecision(checkin, mono, access)
        },
        () =>
          this.deps.log.error(
            { id: admit.id },
            'the annulment of an admit was withheld (the disk is failing)',
          ),
      )
    } catch (err) {
      this.deps.log.error({ err, id: admit.id }, 'the annulment of an admit could not be recorded')
    }
  }

  /** A decision that waited too long for a failing disk: never made, so not remembered either. */
  private withheld(sighting: Sighting): void {
    this.deps.counters.withheld++
    this.deps.dedup.forget(sighting.token, sighting.ts)
  }

  private emitDecision(
    checkin: Checkin,
    advertTs: number,
    access: AccessNote | undefined,
    checkout = false,
  ): void {
    const counters = this.deps.counters
    if (checkin.decision === 'admit') counters.admit++
    else if (checkin.reason) counters.deny[checkin.reason]++
    const latencyMs = Math.max(0, this.deps.clock.mono() - advertTs)
    this.emit('decision', {
      ...checkin,
      latencyMs,
      ...(access ? { access } : {}),
      ...(checkout ? { checkout: true as const } : {}),
    })
  }

  private emitSighting(sighting: Sighting): void {
    const proximity = this.deps.proximity
    this.emit('sighting', {
      token: sighting.token,
      rssi: sighting.rssi,
      smoothed: proximity.smoothed(sighting.token) ?? null,
      decoder: sighting.decoder,
      address: sighting.address,
      present: proximity.isPresent(sighting.token),
    })
  }
}
