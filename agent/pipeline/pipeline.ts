import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import type { Checkin } from '../../shared/checkin.js'
import type { DecisionEvent, SightingEvent } from '../../shared/control.js'
import type { Advert } from '../ble/source.js'
import type { Clock } from '../clock.js'
import type { PipelineCounters } from '../metrics.js'
import { RateMeter } from '../metrics.js'
import type { DecisionSink } from '../store/group-commit.js'
import type { Dedup } from './dedup.js'
import type { Proximity } from './proximity.js'
import type { Sighting } from './types.js'
import type { Validator, Verdict } from './validator.js'

/** The decoder as the pipeline sees it (see agent/decode/token-decoder.ts). */
export interface AdvertDecoder {
  decode(a: Advert): Sighting | null
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
  handleAdvert = (a: Advert): void => {
    const { counters } = this.deps
    counters.adverts++
    this.advertRate.mark(a.ts)
    if (this.listenerCount('advert') > 0) this.emit('advert', a)
    // no usable RSSI (HCI reports 127 for "not available"): nothing says the badge is at the gate,
    // and a check-in's RSSI must be a real reading (-127..20 dBm, as the cloud checks it)
    if (!(a.rssi >= -127 && a.rssi <= 20)) return
    let s: Sighting | null
    try {
      s = this.deps.decoder.decode(a)
    } catch (err) {
      this.deps.log.debug({ err }, 'decoder threw; advert dropped')
      return
    }
    if (s === null) return
    counters.sightings++
    const arrived = this.deps.proximity.observe(s)
    if (this.listenerCount('sighting') > 0) this.emitSighting(s)
    if (!arrived) return
    counters.arrivals++
    this.decide(s)
  }

  private decide(s: Sighting): void {
    const { dedup, validator, counters } = this.deps
    const verdict = dedup.check(s.token, s.ts, validator.version())
    let v: Verdict
    if (verdict.kind === 'suppress') {
      counters.suppressed++
      return
    }
    if (verdict.kind === 'already_checked_in') {
      v = {
        decision: 'deny',
        reason: 'already_checked_in',
        participantId: verdict.participantId,
        rosterVersion: validator.version(),
      }
    } else {
      v = validator.validate(s.token)
      // remembered only once it is recorded: a withheld decision (the disk failing) was never made
      if (this.record(s, v)) dedup.remember(s.token, v, s.ts)
      return
    }
    this.record(s, v)
  }

  /** Buffer the decision for its durable commit; false when it is withheld. */
  private record(s: Sighting, v: Verdict): boolean {
    const adv = s.ts
    try {
      this.deps.decisions.append(
        {
          token: s.token,
          participantId: v.participantId,
          decision: v.decision,
          reason: v.reason,
          rssi: s.rssi,
          rosterVersion: v.rosterVersion,
          monoMs: adv,
        },
        (c) => this.emitDecision(c, adv),
        () => this.withheld(s),
      )
      return true
    } catch (err) {
      this.deps.counters.withheld++
      this.deps.log.error({ err, token: s.token }, 'decision could not be buffered; withheld')
      return false
    }
  }

  /** A decision that waited too long for a failing disk: never made, so not remembered either. */
  private withheld(s: Sighting): void {
    this.deps.counters.withheld++
    this.deps.dedup.forget(s.token, s.ts)
  }

  private emitDecision(c: Checkin, advertTs: number): void {
    const counters = this.deps.counters
    if (c.decision === 'admit') counters.admit++
    else if (c.reason) counters.deny[c.reason]++
    const latencyMs = Math.max(0, this.deps.clock.mono() - advertTs)
    this.emit('decision', { ...c, latencyMs })
  }

  private emitSighting(s: Sighting): void {
    const p = this.deps.proximity
    this.emit('sighting', {
      token: s.token,
      rssi: s.rssi,
      smoothed: p.smoothed(s.token) ?? null,
      decoder: s.decoder,
      address: s.address,
      present: p.isPresent(s.token),
    })
  }
}
