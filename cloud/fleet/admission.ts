import { LRUCache } from 'lru-cache'
import type pg from 'pg'
import type { Logger } from 'pino'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { ThrottledLog } from '../../shared/throttled-log.js'
import { GATE_ID_RE } from '../gates/store.js'
import { AlertLimiter, type AlertRate, alertRateDefaults } from './alert-limit.js'
import { believableSession, MAX_SESSION_AHEAD_S } from './bounds.js'
import type { GateFleetState } from './view.js'

/** The ids of the gates the cloud knows: its `gates` table (`gate-cloud gates add`). */
export function postgresGateIds(pool: pg.Pool): () => Promise<string[]> {
  return async () => (await pool.query<{ id: string }>('SELECT id FROM gates')).rows.map((r) => r.id)
}

export interface KnownGatesOptions {
  /** every gate id the cloud knows (postgresGateIds) */
  load: () => Promise<Iterable<string>>
  log: Logger
  /** the whole set is read again this often, ms (a gate removed leaves the fleet view then) */
  refreshMs?: number
  /** an id not in the set reads it again, at most this often, ms (a gate added since is known then) */
  minReloadMs?: number
  now?: () => number
}

/**
 * Which gate ids the cloud knows, so that a topic name alone cannot create a gate in the fleet
 * view, in Redis and in the alerts. The whole set is held in memory (a fleet of ten thousand gates
 * is a few hundred kB) and read again every `refreshMs`, and sooner when an id not in it is heard,
 * at most every `minReloadMs` whatever the flood: a gate added while the cloud runs is taken from
 * its first message after that read.
 */
export class KnownGates {
  private ids: Set<string> | null = null
  private triedAt = Number.NEGATIVE_INFINITY
  private loading: Promise<void> | null = null
  private timer: NodeJS.Timeout | null = null
  private readonly listeners = new Set<() => void>()
  private readonly now: () => number

  constructor(private readonly options: KnownGatesOptions) {
    this.now = options.now ?? Date.now
  }

  /**
   * true: a gate of the table; false: not one; null: the table has not been read yet (the
   * database unreachable since the start): the monitor then takes every gate rather than none,
   * bounded by its own cap, so that a database outage does not blind ops to the real fleet.
   */
  has(gateId: string): boolean | null {
    return this.ids === null ? null : this.ids.has(gateId)
  }

  /** Read the table now, then every `refreshMs`. */
  async start(): Promise<void> {
    await this.refresh()
    this.timer = setInterval(() => void this.refresh(), this.options.refreshMs ?? 60_000)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  /** Be told after each successful read (the monitor drops the gates that left the table). */
  onLoad(fn: () => void): void {
    this.listeners.add(fn)
  }

  /** An id not in the set was heard: it may have just been added. */
  missed(): void {
    if (this.now() - this.triedAt >= (this.options.minReloadMs ?? 5_000)) void this.refresh()
  }

  /** Read the table again (one read at a time); a failure keeps the set of the last read. */
  refresh(): Promise<void> {
    this.loading ??= (async () => {
      this.triedAt = this.now()
      try {
        this.ids = new Set(await this.options.load())
      } catch (err) {
        this.options.log.warn(
          { err: (err as Error).message, known: this.ids?.size ?? null },
          this.ids
            ? 'gates not read; the known gates of the last read are kept'
            : 'gates not read; every gate is taken until they are',
        )
        return
      } finally {
        this.loading = null
      }
      for (const fn of this.listeners) fn()
    })()
    return this.loading
  }
}

/** A gate id heard on a topic but not known to the cloud. */
export interface UnknownGate {
  /** the id from the topic, at most 128 characters of it */
  gateId: string
  messages: number
  /** first and last heard, ms since the epoch */
  firstAt: number
  lastAt: number
  lastTopic: string
}

/**
 * Gates heard but not known (a gate not registered, a typo in a gate's id, made-up topic names),
 * kept apart from the fleet for ops to see: the most recent `max`, the others forgotten, so that a
 * flood of made-up names costs a bounded amount of memory. Their messages are counted, not read.
 */
export class UnknownGates {
  private readonly recent: LRUCache<string, UnknownGate>
  /** messages of unknown gates since the start */
  messages = 0

  constructor(
    max = 1_000,
    private readonly now: () => number = Date.now,
  ) {
    this.recent = new LRUCache({ max })
  }

  /** One message of an unknown gate on `topic` (status, metrics, events). */
  record(gateId: string, topic: string): void {
    this.messages++
    const id = gateId.slice(0, 128)
    const at = this.now()
    const known = this.recent.get(id)
    if (known) {
      known.messages++
      known.lastAt = at
      known.lastTopic = topic
    } else this.recent.set(id, { gateId: id, messages: 1, firstAt: at, lastAt: at, lastTopic: topic })
  }

  /** How many are remembered now (at most `max`). */
  get size(): number {
    return this.recent.size
  }

  /** The remembered ones, most recently heard first. */
  list(): UnknownGate[] {
    return [...this.recent.values()].sort((a, b) => b.lastAt - a.lastAt)
  }
}

/** Gates taken without a gates table to check them against (no database, or not read yet). */
export const MAX_UNCHECKED_GATES = 100_000

/** The counts FleetAdmission keeps in the monitor's stats. */
export interface AdmissionStats {
  /** messages of gates not known to the cloud (not read) */
  unknownGateMessages: number
  /** messages whose session was not believed (far ahead of the wall clock) */
  sessionsRejected: number
  /** alerts not raised: over a gate's rate for their kind */
  alertsSuppressed: number
}

/**
 * What the fleet monitor lets in: messages of gates the cloud knows (the others counted apart, in
 * UnknownGates), sessions it can believe (bounds.ts), and alerts within each gate's rate
 * (AlertLimiter). Everything refused is counted and logged, at most one line a minute per kind.
 */
export class FleetAdmission {
  readonly unknown: UnknownGates
  private readonly limiter: AlertLimiter
  private readonly unknownCounter: Counter<'kind'>
  private readonly sessionsCounter: Counter<'kind'>
  private readonly suppressedCounter: Counter<'kind'>
  private readonly now: () => number

  constructor(
    private readonly options: {
      known?: KnownGates | undefined
      rate?: Partial<AlertRate> | undefined
      stats: AdmissionStats
      warn: ThrottledLog
      registry: Registry
      now: () => number
    },
  ) {
    this.now = options.now
    this.unknown = new UnknownGates(1_000, options.now)
    this.limiter = new AlertLimiter({ ...alertRateDefaults, ...options.rate }, options.now)
    this.unknownCounter = new Counter({
      name: 'fleet_unknown_gate_messages_total',
      help: 'MQTT messages of gates the cloud does not know (not in its gates table), by topic kind; not read',
      labelNames: ['kind'],
      registers: [options.registry],
    })
    const unknown = this.unknown
    const unknownGauge: Gauge = new Gauge({
      name: 'fleet_unknown_gates',
      help: 'Unknown gates remembered for ops (the most recent, at most 1,000)',
      registers: [options.registry],
      collect: () => unknownGauge.set(unknown.size),
    })
    this.sessionsCounter = new Counter({
      name: 'fleet_sessions_rejected_total',
      help: 'MQTT messages ignored because their session was far ahead of the wall clock, by topic kind',
      labelNames: ['kind'],
      registers: [options.registry],
    })
    this.suppressedCounter = new Counter({
      name: 'fleet_alerts_suppressed_total',
      help: 'Fleet alerts not raised because their gate was over its rate for that kind',
      labelNames: ['kind'],
      registers: [options.registry],
    })
  }

  /**
   * Whether messages of `gateId` go into the fleet: a valid gate id, in the gates table once it is
   * read; until then (or without one) any valid id while fewer than MAX_UNCHECKED_GATES are
   * `tracked`. A message refused is counted as an unknown gate's, and not read.
   */
  admit(gateId: string, topic: string, tracked: (gateId: string) => boolean, size: number): boolean {
    if (
      this.belongs(gateId) &&
      (this.options.known?.has(gateId) || tracked(gateId) || size < MAX_UNCHECKED_GATES)
    )
      return true
    if (GATE_ID_RE.test(gateId)) this.options.known?.missed() // it may have been added since the last read
    this.options.stats.unknownGateMessages++
    this.unknownCounter.inc({ kind: topic })
    this.unknown.record(gateId, topic)
    this.options.warn.warn(
      'unknown-gate',
      gateId,
      { gateId: gateId.slice(0, 128), kind: topic },
      'fleet message of a gate the cloud does not know ignored (gate-cloud gates add registers a gate)',
    )
    return false
  }

  /** Whether a gate can be part of the fleet: a valid id, not missing from the gates table. */
  belongs(gateId: string): boolean {
    return GATE_ID_RE.test(gateId) && this.options.known?.has(gateId) !== false
  }

  /**
   * Whether another node's view of a gate (from Redis) is kept: a gate of the fleet, of a session
   * that can be believed (a node without these bounds may have written one that would win for good).
   */
  keepsView(g: GateFleetState): boolean {
    return this.belongs(g.gateId) && (g.session === null || believableSession(g.session, this.now()))
  }

  /** Whether a message's session can be believed (see bounds.ts); if not, counted and logged. */
  believed(gateId: string, topic: string, session: number): boolean {
    if (believableSession(session, this.now())) return true
    this.options.stats.sessionsRejected++
    this.sessionsCounter.inc({ kind: topic })
    this.options.warn.warn(
      'session',
      gateId,
      { gateId, kind: topic, session, maxAheadS: MAX_SESSION_AHEAD_S },
      "fleet message ignored: its session is far ahead of this node's clock (the gate's clock or counter is wrong, or the message is forged)",
    )
    return false
  }

  /** Whether an alert of `kind` of `gateId` may go out; if not, counted as suppressed and logged. */
  alertAllowed(gateId: string, kind: string): boolean {
    if (this.limiter.take(gateId, kind)) return true
    this.options.stats.alertsSuppressed++
    this.suppressedCounter.inc({ kind })
    this.options.warn.warn(
      'alert-suppressed',
      gateId,
      { gateId, kind },
      'fleet alert suppressed: its gate raised more of this kind than its rate allows',
    )
    return false
  }
}
