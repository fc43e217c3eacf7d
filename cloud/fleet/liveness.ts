import type { Logger } from 'pino'
import { type FleetAlert, seqGapAlert, silenceAlert } from './detections.js'
import type { HeardSeqs, SeqGap, SeqLedger } from './seqs.js'
import type { SilenceClock } from './silence.js'
import type { FleetView } from './view.js'

/** The monitor looks for expired deadlines this often, ms. */
export const SWEEP_MS = 250

/** seqs of one gate kept for the ledger between sweeps (and while it cannot be reached) */
const MAX_HEARD_SEQS = 10_000

/**
 * A gate that announced its keep-alive K and metrics interval I is offline once nothing has been
 * heard from it for 1.5 x max(K, I), the bound the broker applies, less this share of it (at most
 * 1 s) for the monitor's own sweep and the transport, so that the cloud's verdict falls within
 * the bound however coarse the broker's keep-alive timer is (Mosquitto 2.0 looks every few
 * seconds). A live gate is heard from every I <= K, so it has 0.5 x K of slack before this.
 */
export function silenceLimitMs(keepaliveS: number, metricsIntervalS: number): number {
  const bound = 1.5 * Math.max(keepaliveS, metricsIntervalS) * 1000
  return bound - Math.min(1_000, bound / 10)
}

/** How long a gate may be silent, ms, and what it is then: offline (it announced a keep-alive) or stale. */
interface SilenceLimit {
  ms: number
  offline: boolean
}

export interface LivenessOptions {
  view: FleetView
  /** where the nodes meet to tell a silent gate */
  silence: SilenceClock
  /** where the nodes meet to tell a lost message */
  seqs: SeqLedger
  /** a gate that announced no keep-alive is stale after this long, ms */
  silentAfterMs: number
  alert: (alert: FleetAlert) => void
  log: Logger
  now: () => number
}

/**
 * Whether the gates live, judged for the whole fleet: each gate's deadline (when it must next be
 * heard from) and the sequence numbers heard are collected between sweeps, then shared where the
 * nodes meet (the silence clock and the seq ledger); a deadline that passed makes its gate silent,
 * a seq no node heard is a lost message.
 */
export class Liveness {
  /** per gate, from its birth: silent for this long, ms, and then offline (else stale) */
  private readonly limits = new Map<string, SilenceLimit>()
  /** deadlines heard since the last sweep: shared at the next sweep */
  private dueSoon = new Map<string, number>()
  /** gates that said offline since the last sweep: their deadlines are withdrawn at the next sweep */
  private forgotten = new Set<string>()
  private heardSeqs = new Map<string, HeardSeqs>()
  private sweeping = false
  private silenceErrorAt = 0

  constructor(private readonly options: LivenessOptions) {}

  /** How long this gate may be silent, from what it announces (its birth, and each metrics message). */
  learnTiming(
    gateId: string,
    timing: { keepaliveS?: number | undefined; metricsIntervalS?: number | undefined },
  ): void {
    const have = this.limits.get(gateId)
    if (timing.keepaliveS !== undefined && timing.metricsIntervalS !== undefined) {
      const ms = silenceLimitMs(timing.keepaliveS, timing.metricsIntervalS)
      if (have?.ms !== ms || !have.offline) this.limits.set(gateId, { ms, offline: true })
    } else if (!have) {
      this.limits.set(gateId, { ms: this.options.silentAfterMs, offline: false })
    }
  }

  /** A message `seq` of the gate's `session` was heard: recorded in the ledger at the next sweep. */
  heardSeq(gateId: string, session: number, seq: number): void {
    const heard = this.heardSeqs.get(gateId)
    if (heard && heard.session === session) {
      // bounded while the ledger cannot be reached: the oldest are let go (and may count as lost)
      if (heard.seqs.length >= MAX_HEARD_SEQS) heard.seqs.shift()
      heard.seqs.push(seq)
    } else if (!heard || session > heard.session) this.heardSeqs.set(gateId, { session, seqs: [seq] })
  }

  /** A gate said offline (its will or a stop): no deadline any more, from the next sweep. */
  forget(gateId: string): void {
    this.dueSoon.delete(gateId)
    this.forgotten.add(gateId)
  }

  /** A gate was heard from now: its next deadline, shared at the next sweep. */
  heard(gateId: string): void {
    this.forgotten.delete(gateId)
    this.dueSoon.set(gateId, this.options.now() + (this.limits.get(gateId)?.ms ?? this.options.silentAfterMs))
  }

  /** Forget all of a gate (it left the gates table). */
  drop(gateId: string): void {
    this.limits.delete(gateId)
    this.heardSeqs.delete(gateId)
    this.forget(gateId)
  }

  /**
   * Share the deadlines heard since the last sweep, then claim the ones that passed (each to one
   * node of the fleet): a gate that announced its keep-alive goes offline (reason 'silent': its
   * link is gone and the broker's will is on its way), any other gate stale.
   */
  async sweep(): Promise<void> {
    if (this.sweeping) return
    this.sweeping = true
    const { silence, seqs, log, now } = this.options
    const due = this.dueSoon
    const gone = [...this.forgotten]
    const heardSeqs = this.heardSeqs
    this.dueSoon = new Map()
    this.forgotten = new Set()
    this.heardSeqs = new Map()
    try {
      // lost messages: what no node heard (a seq recorded twice, after a retry, counts once)
      for (const gap of await seqs.record(heardSeqs, now())) this.lost(gap)
    } catch (err) {
      // recorded at the next sweep: a seq left out would later count as lost
      for (const [gateId, heard] of heardSeqs)
        for (const seq of heard.seqs) this.heardSeq(gateId, heard.session, seq)
      log.debug({ err: (err as Error).message }, 'sequence numbers not recorded yet')
    }
    try {
      await silence.push(due)
      await silence.forget(gone)
      for (const [gateId, deadline] of await silence.claim(now(), 1_000)) this.silent(gateId, deadline)
    } catch (err) {
      // shared again at the next sweep (a deadline heard meanwhile is later and wins)
      for (const [gateId, deadline] of due) if (!this.dueSoon.has(gateId)) this.dueSoon.set(gateId, deadline)
      for (const gateId of gone) this.forgotten.add(gateId)
      if (now() - this.silenceErrorAt > 30_000) {
        this.silenceErrorAt = now()
        log.warn(
          { err: (err as Error).message },
          "gate deadlines not shared; silent gates are found again when Redis is back (the broker's wills still come)",
        )
      }
    } finally {
      this.sweeping = false
    }
  }

  private lost(gap: SeqGap): void {
    const gate = this.options.view.get(gap.gateId)
    if (gate && gate.session === gap.session) {
      gate.seqGaps += gap.lost
      this.options.view.save(gate)
    }
    this.options.alert(seqGapAlert(gap))
  }

  /** The gate's deadline passed (this node claimed it): offline or stale, unless it said offline meanwhile. */
  private silent(gateId: string, deadline: number): void {
    const gate = this.options.view.get(gateId)
    if (gate?.state !== 'online') return
    const limit = this.limits.get(gateId) ?? { ms: this.options.silentAfterMs, offline: false }
    // when anyone in the fleet last heard it (this node may have seen only part of its messages)
    gate.lastSeenAt = Math.max(gate.lastSeenAt ?? 0, deadline - limit.ms)
    const alert = silenceAlert(gateId, {
      lastSeenAt: gate.lastSeenAt,
      now: this.options.now(),
      limitMs: limit.ms,
      offline: limit.offline,
    })
    if (limit.offline) {
      gate.state = 'offline'
      gate.reason = 'silent'
    } else {
      gate.state = 'stale'
    }
    this.options.view.save(gate)
    this.options.alert(alert)
  }
}
