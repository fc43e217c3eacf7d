import { randomUUID } from 'node:crypto'
import mqtt from 'mqtt'
import type { Logger } from 'pino'
import { Counter, Gauge, type Registry } from 'prom-client'
import { GateError } from '../../shared/errors.js'
import {
  type Command,
  type CommandResponse,
  commandResponseSchema,
  eventPayloadSchema,
  FLEET_SCHEMA_VERSION,
  fleetTopics,
  type GateMetrics,
  metricsPayloadSchema,
  signCommand,
  statusPayloadSchema,
} from '../../shared/fleet.js'
import { FLEET_MAX_PAYLOAD_BYTES } from '../../shared/mqtt-limits.js'
import { ThrottledLog } from '../../shared/throttled-log.js'
import { GATE_ID_RE } from '../gates/store.js'
import { FleetAdmission, type KnownGates, type UnknownGate } from './admission.js'
import type { AlertRate } from './alert-limit.js'
import { HistoryQueue } from './history.js'
import { type HeardSeqs, LocalSeqLedger, type SeqGap, type SeqLedger } from './seqs.js'
import { LocalSilenceClock, type SilenceClock } from './silence.js'

export interface GateFleetState {
  gateId: string
  /**
   * online: its session said so and it is heard from; offline: its will, a clean stop, or (reason
   * 'silent') nothing heard for 1.5 of the keep-alives it announced; stale: silent for
   * `silentAfterMs`, for a gate that announced no keep-alive
   */
  state: 'online' | 'offline' | 'stale'
  reason: string | null
  session: number | null
  lastSeq: number | null
  lastSeenAt: number | null
  version: string | null
  bootId: string | null
  startedAt: string | null
  metrics: GateMetrics | null
  seqGaps: number
  lastEvent: { kind: string; at: number } | null
}

export interface FleetAlert {
  kind:
    | 'gate_offline'
    | 'gate_silent'
    | 'seq_gap'
    | 'high_temperature'
    | 'gate_event'
    | 'backlog_growth'
    | 'roster_stale'
    | 'clock_skew'
    | 'no_adverts'
  gateId: string
  severity: 'info' | 'warning' | 'critical'
  summary: string
  detail: Record<string, unknown>
}

export interface FleetDetection {
  /** the buffer grew on this many consecutive reports and its oldest row is older than `backlogAgeS` */
  backlogReports: number
  backlogAgeS: number
  /** no successful sync (and so no roster pull) for this long */
  rosterStaleS: number
  /** the gate's clock differs from the server's by more than this, ms */
  maxSkewMs: number
  /** an online gate reporting no adverts for this long during an event (a dead radio or an empty door), s */
  noAdvertsS: number
}

export const fleetDetectionDefaults: FleetDetection = {
  backlogReports: 3,
  backlogAgeS: 600,
  rosterStaleS: 900,
  maxSkewMs: 120_000,
  noAdvertsS: 600,
}

/** seqs of one gate kept for the ledger between sweeps (and while it cannot be reached) */
const MAX_HEARD_SEQS = 10_000
/** Per gate: what the detections remember between reports. */
interface DetectState {
  grewReports: number
  lastPending: number
  backlog: boolean
  rosterStale: boolean
  skewed: boolean
  quietSince: number | null
  quiet: boolean
}

/** Declared by silence (by whichever node claimed the gate's deadline), not said by the gate or its will. */
const silenced = (g: GateFleetState) =>
  g.state === 'stale' || (g.state === 'offline' && g.reason === 'silent')

/**
 * Which of two views of one gate is more recent: the later session; within a session an offline
 * status (the will or a stop ends the session); a silence against a view of the gate heard after
 * the silence's last-heard time (the gate spoke again: it lives); else the higher sequence number.
 */
export function newer(a: GateFleetState, b: GateFleetState): boolean {
  const as = a.session ?? -1
  const bs = b.session ?? -1
  if (as !== bs) return as > bs
  const ended = (g: GateFleetState) => g.state === 'offline' && !silenced(g)
  if (ended(a) || ended(b)) return ended(a) && !ended(b)
  if (silenced(a) !== silenced(b)) {
    const [quiet, other] = silenced(a) ? [a, b] : [b, a]
    const spokeSince = (other.lastSeenAt ?? 0) > (quiet.lastSeenAt ?? 0)
    return silenced(a) ? !spokeSince : spokeSince
  }
  return (a.lastSeq ?? -1) > (b.lastSeq ?? -1)
}

/** The monitor looks for expired deadlines this often, ms. */
const SWEEP_MS = 250

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

/** Where the fleet state of every node meets (Redis), so that any node can list the whole fleet. */
export interface FleetStateStore {
  save(g: GateFleetState): Promise<void>
  /** every gate's most recent view; the views `keep` refuses are left out and removed */
  all(keep?: (g: GateFleetState) => boolean): Promise<GateFleetState[]>
}

/** One metrics message for the history table. */
export interface MetricsRow {
  gateId: string
  ts: number
  session: number
  seq: number
  metrics: GateMetrics
}

export interface FleetMonitorOptions {
  /** shared fleet state (Redis); without it each node knows what it received */
  store?: FleetStateStore
  /** where the nodes meet to tell a silent gate (Redis); without it this node's own clock (one node) */
  silence?: SilenceClock
  /** where the nodes meet to tell a lost message (Redis); without it what this node heard (one node) */
  seqs?: SeqLedger
  /** the metrics history writer (Postgres), called with batches about once a second */
  history?: (rows: MetricsRow[]) => Promise<void>
  url: string
  /** shared-subscription group: the nodes of one group split the fleet's metrics and events; null: plain subscriptions (one node) */
  group: string | null
  /** a gate silent for this long is stale (a multiple of its metrics interval), ms */
  silentAfterMs: number
  /** temperature that raises an alert, °C */
  maxTemperatureC: number
  /** detections from the metrics (defaults in fleetDetectionDefaults) */
  detect?: Partial<FleetDetection>
  /** the gates the cloud knows (its gates table): messages of any other gate are counted apart, not read */
  knownGates?: KnownGates
  /** alerts per gate and kind (defaults in alertRateDefaults) */
  alertRate?: Partial<AlertRate>
  log: Logger
  registry: Registry
  onAlert: (a: FleetAlert) => void
  username?: string | undefined
  password?: string | undefined
  now?: () => number
}

/**
 * The cloud's view of the fleet, from MQTT. Status is subscribed by every node (it is retained, and
 * brokers do not send retained messages to shared subscriptions), metrics and events through a
 * shared subscription so that several nodes split the fleet. Every payload is validated; garbage
 * is counted and logged, never a crash. A will from an older session than the one known is stale and
 * ignored (the gate is already back); a jump in a session's sequence numbers is a lost message.
 */
export class FleetMonitor {
  private client: mqtt.MqttClient | null = null
  private readonly gates = new Map<string, GateFleetState>()
  private timer: NodeJS.Timeout | null = null
  private readonly history: HistoryQueue | null
  private readonly detectState = new Map<string, DetectState>()
  private readonly detect: FleetDetection
  private readonly now: () => number
  readonly stats = {
    messages: 0,
    garbage: 0,
    historyRows: 0,
    historyDropped: 0,
    /** rows the database refused for their data (dropped, so that the others are written) */
    historyRejected: 0,
    /** messages whose session was not believed (far ahead of the wall clock) */
    sessionsRejected: 0,
    /** messages of gates the cloud does not know (not read) */
    unknownGateMessages: 0,
    /** alerts not raised: over their gate's rate for that kind */
    alertsSuppressed: 0,
  }
  private readonly garbageCounter: Counter<'kind'>
  private readonly admission: FleetAdmission
  /** bad input can come in floods: one line a minute per kind of problem */
  private readonly warn: ThrottledLog
  private readonly gatesGauge: Gauge<'state'>
  private readonly watchers = new Set<(g: GateFleetState) => void>()
  private readonly silence: SilenceClock
  /** per gate, from its birth: silent for this long, ms, and then offline (else stale) */
  private readonly limits = new Map<string, { ms: number; offline: boolean }>()
  /** deadlines heard since the last sweep, and gates that said offline: shared at the next sweep */
  private dueSoon = new Map<string, number>()
  /** response subscriptions of the commands in flight, by topic */
  private readonly responseSubs = new Map<string, { count: number; ready: Promise<unknown> }>()
  private heardSeqs = new Map<string, HeardSeqs>()
  private readonly seqs: SeqLedger
  private forgotten = new Set<string>()
  private sweeping = false
  private sweeps = 0
  private silenceErrorAt = 0

  constructor(private readonly o: FleetMonitorOptions) {
    this.now = o.now ?? Date.now
    this.silence = o.silence ?? new LocalSilenceClock()
    this.seqs = o.seqs ?? new LocalSeqLedger()
    this.detect = { ...fleetDetectionDefaults, ...o.detect }
    this.warn = new ThrottledLog(o.log, 60_000, 256, this.now)
    this.admission = new FleetAdmission({
      known: o.knownGates,
      rate: o.alertRate,
      stats: this.stats,
      warn: this.warn,
      registry: o.registry,
      now: this.now,
    })
    // a gate removed from the table leaves the view (and a gate taken before the first read, unknown)
    o.knownGates?.onLoad(() => {
      for (const id of [...this.gates.keys()]) if (!this.admission.belongs(id)) this.drop(id)
    })
    this.history = o.history
      ? new HistoryQueue(o.history, { stats: this.stats, warn: this.warn, registry: o.registry })
      : null
    this.garbageCounter = new Counter({
      name: 'fleet_garbage_messages_total',
      help: 'MQTT messages that were not valid fleet payloads, by topic kind',
      labelNames: ['kind'],
      registers: [o.registry],
    })
    this.gatesGauge = new Gauge({
      name: 'fleet_gates',
      help: 'Gates by state (online, stale, offline)',
      labelNames: ['state'],
      registers: [o.registry],
      collect: () => {
        for (const s of ['online', 'stale', 'offline'] as const)
          this.gatesGauge.set({ state: s }, [...this.gates.values()].filter((g) => g.state === s).length)
      },
    })
  }

  async start(): Promise<void> {
    // read before subscribing: the retained statuses of the whole fleet come at once
    await this.o.knownGates?.start()
    const client = mqtt.connect(this.o.url, {
      clientId: `gate-cloud-fleet-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      username: this.o.username,
      password: this.o.password,
      reconnectPeriod: 2_000,
      // 3.1.1: shared subscriptions work with it on Mosquitto, EMQX and HiveMQ, and aedes speaks nothing newer
      protocolVersion: 4,
    })
    this.client = client
    client.on('error', (err) => this.o.log.warn({ err: err.message }, 'fleet MQTT error'))
    client.on('connect', () => {
      const share = this.o.group ? `$share/${this.o.group}/` : ''
      client
        .subscribeAsync({
          'gates/+/status': { qos: 1 },
          [`${share}gates/+/metrics`]: { qos: 0 },
          [`${share}gates/+/events`]: { qos: 1 },
        })
        .catch((err) => this.o.log.warn({ err: (err as Error).message }, 'fleet subscription failed'))
    })
    client.on('message', (topic, payload, packet) => this.handle(topic, payload, packet.retain))
    this.timer = setInterval(() => {
      void this.sweep()
      if (++this.sweeps % (1_000 / SWEEP_MS) === 0) void this.flushHistory()
    }, SWEEP_MS)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    this.o.knownGates?.stop()
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.client?.endAsync().catch(() => {})
    this.client = null
  }

  /**
   * Send a signed command to a gate and wait for its answer on gates/<id>/cmd/response. The
   * response topic is subscribed by this node only for the wait (not shared: the answer must come
   * back to the node that asked).
   */
  async command(
    gateId: string,
    cmd: Command['cmd'],
    params: Record<string, unknown>,
    secret: string,
    timeoutMs = 10_000,
  ): Promise<CommandResponse> {
    // a gate id is a topic level: '+', '#' or '/' would address other gates or break the session
    if (!GATE_ID_RE.test(gateId)) throw new GateError('E_INPUT', `"${gateId}" is not a gate id`)
    const c = this.client
    if (!c?.connected) throw new Error('not connected to the MQTT broker')
    const topics = fleetTopics(gateId)
    const signed = signCommand(
      { v: FLEET_SCHEMA_VERSION, id: randomUUID(), ts: this.now(), gateId, cmd, params },
      secret,
    )
    // one deadline for all of it: subscribing, publishing (a broker that never acknowledges) and the answer
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`gate ${gateId} did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      )
    })
    let onMessage: ((topic: string, payload: Buffer) => void) | undefined
    const answer = new Promise<CommandResponse>((resolve) => {
      onMessage = (topic: string, payload: Buffer) => {
        if (topic !== topics.cmdResponse || payload.length > FLEET_MAX_PAYLOAD_BYTES) return
        let body: unknown
        try {
          body = JSON.parse(payload.toString('utf8'))
        } catch {
          return
        }
        const r = commandResponseSchema.safeParse(body)
        if (r.success && r.data.id === signed.id) resolve(r.data)
      }
      c.on('message', onMessage)
    })
    const work = (async () => {
      await this.subscribeResponses(c, topics.cmdResponse)
      await c.publishAsync(topics.cmd, JSON.stringify(signed), { qos: 1 })
      return answer
    })()
    // whichever loses the race is settled later with nobody waiting: not an unhandled rejection
    work.catch(() => {})
    deadline.catch(() => {})
    try {
      return await Promise.race([work, deadline])
    } finally {
      clearTimeout(timer)
      if (onMessage) c.off('message', onMessage)
      await this.unsubscribeResponses(c, topics.cmdResponse)
    }
  }

  /**
   * Commands to one gate share its response subscription (the first subscribes, the last to finish
   * unsubscribes): one command finishing must not unsubscribe another still waiting for its answer.
   */
  private subscribeResponses(c: mqtt.MqttClient, topic: string): Promise<unknown> {
    const sub = this.responseSubs.get(topic)
    if (sub) {
      sub.count++
      return sub.ready
    }
    const ready = c.subscribeAsync(topic, { qos: 1 })
    ready.catch(() => {})
    this.responseSubs.set(topic, { count: 1, ready })
    return ready
  }

  private async unsubscribeResponses(c: mqtt.MqttClient, topic: string): Promise<void> {
    const sub = this.responseSubs.get(topic)
    if (!sub) return
    if (--sub.count > 0) return
    this.responseSubs.delete(topic)
    await c.unsubscribeAsync(topic).catch(() => {})
  }

  list(): GateFleetState[] {
    return [...this.gates.values()].sort((a, b) => a.gateId.localeCompare(b.gateId))
  }

  /** The whole fleet: every node's share from the shared store when there is one, else this node's. */
  async fleet(): Promise<GateFleetState[]> {
    if (!this.o.store) return this.list()
    const merged = new Map<string, GateFleetState>()
    try {
      for (const g of await this.o.store.all((v) => this.admission.keepsView(v))) merged.set(g.gateId, g)
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'shared fleet state unavailable; this node only')
    }
    for (const g of this.gates.values()) {
      const other = merged.get(g.gateId)
      if (!other || !newer(other, g)) merged.set(g.gateId, g)
    }
    return [...merged.values()].sort((a, b) => a.gateId.localeCompare(b.gateId))
  }

  /**
   * Write the buffered metrics to the history; bounded: a long database outage drops the oldest, and
   * a row the database refuses is dropped rather than holding up the others (see HistoryQueue).
   */
  async flushHistory(): Promise<void> {
    await this.history?.flush()
  }

  /** Gates heard but not known to the cloud (the most recent), and how many of their messages were ignored. */
  unknownGates(): { messages: number; recent: UnknownGate[] } {
    return { messages: this.admission.unknown.messages, recent: this.admission.unknown.list() }
  }

  get(gateId: string): GateFleetState | null {
    return this.gates.get(gateId) ?? null
  }

  /** One message (public for tests: the same path as the broker's); `retained`: sent from before we subscribed. */
  handle(topic: string, payload: Buffer, retained = false): void {
    this.stats.messages++
    const m = /^gates\/([^/]+)\/(status|metrics|events)$/.exec(topic)
    if (!m) return
    const gateId = m[1] as string
    const kind = m[2] as 'status' | 'metrics' | 'events'
    if (payload.length === 0) return // a cleared retained status
    // before reading it: a made-up topic name must not create a gate, here, in Redis or in the alerts
    if (!this.admission.admit(gateId, kind, (id) => this.gates.has(id), this.gates.size)) return
    // mqtt.js has no size limit for MQTT 3.1.1: not read past the brokers' limit (a 50 MB message
    // parsed took the node from 237 to 542 MB)
    if (payload.length > FLEET_MAX_PAYLOAD_BYTES) {
      this.garbage(kind, gateId, `payload of ${payload.length} bytes, over ${FLEET_MAX_PAYLOAD_BYTES}`)
      return
    }
    let body: unknown
    try {
      body = JSON.parse(payload.toString('utf8'))
    } catch {
      this.garbage(kind, gateId, 'not JSON')
      return
    }
    // validated once, into the payload type of its topic
    const r =
      kind === 'status'
        ? statusPayloadSchema.safeParse(body)
        : kind === 'metrics'
          ? metricsPayloadSchema.safeParse(body)
          : eventPayloadSchema.safeParse(body)
    if (!r.success) {
      this.garbage(kind, gateId, r.error.issues[0]?.message ?? 'invalid')
      return
    }
    if (r.data.gateId !== gateId) {
      this.garbage(kind, gateId, `payload names gate ${r.data.gateId}`)
      return
    }
    const p = r.data
    // believed, it would hide every real session of the gate, here and in Redis, and go to the history
    if (!this.admission.believed(gateId, kind, p.session)) return
    const g = this.gate(gateId)
    if ('state' in p) {
      const s = p
      if (g.session !== null && s.session < g.session) return // a will or status of an older session
      const wasOnline = g.state !== 'offline'
      g.session = s.session
      g.lastSeq = s.seq
      g.version = s.version
      g.bootId = s.bootId
      g.startedAt = s.startedAt
      g.state = s.state
      g.reason = s.reason ?? null
      // a will's seq is fixed when the gate connects; a retained status is from before we listened
      if (s.reason !== 'will' && !retained) this.heardSeq(gateId, s.session, s.seq)
      if (s.state === 'online') {
        g.lastSeenAt = this.now()
        this.learnTiming(gateId, s)
        this.heard(gateId)
      } else {
        this.forget(gateId)
      }
      this.save(g)
      if (s.state === 'offline' && wasOnline && s.reason === 'will')
        this.alert({
          kind: 'gate_offline',
          gateId,
          severity: 'critical',
          summary: `gate ${gateId} lost its connection (last will)`,
          detail: { session: s.session },
        })
      return
    }
    if (g.session !== null && p.session < g.session) return
    this.heardSeq(gateId, p.session, p.seq)
    if ('metrics' in p) this.learnTiming(gateId, p)
    const newSession = g.session !== null && p.session > g.session
    // the highest seq this node heard (with a shared subscription others hear the rest)
    g.lastSeq = g.session === p.session ? Math.max(p.seq, g.lastSeq ?? -1) : p.seq
    g.session = p.session
    g.lastSeenAt = this.now()
    if (silenced(g) || (newSession && g.state === 'offline')) {
      // declared silent, yet here it is: a slow link, not a dead one; or offline (a will, a stop)
      // and now heard in a newer session, whose online status this node missed
      this.o.log.info({ gateId, session: p.session }, 'gate heard from again')
      g.state = 'online'
      g.reason = null
    }
    if (g.state === 'online') this.heard(gateId)
    if ('metrics' in p) {
      const mp = p
      const hot =
        mp.metrics.temperature_c !== null &&
        mp.metrics.temperature_c > this.o.maxTemperatureC &&
        !(g.metrics?.temperature_c !== null && (g.metrics?.temperature_c ?? 0) > this.o.maxTemperatureC)
      g.metrics = mp.metrics
      this.detectFromMetrics(gateId, mp.ts, mp.metrics)
      this.history?.push({ gateId, ts: mp.ts, session: mp.session, seq: mp.seq, metrics: mp.metrics })
      if (hot)
        this.alert({
          kind: 'high_temperature',
          gateId,
          severity: 'warning',
          summary: `gate ${gateId} at ${mp.metrics.temperature_c} °C`,
          detail: { temperatureC: mp.metrics.temperature_c },
        })
    } else {
      const ev = p
      g.lastEvent = { kind: ev.kind, at: ev.at }
      this.alert({
        kind: 'gate_event',
        gateId,
        severity: ev.kind === 'adapter_back' ? 'info' : 'warning',
        summary: `gate ${gateId}: ${ev.kind}`,
        detail: { event: ev.kind, ...ev.detail },
      })
    }
    this.save(g)
  }

  /** How long this gate may be silent, from what it announces (its birth, and each metrics message). */
  private learnTiming(
    gateId: string,
    t: { keepaliveS?: number | undefined; metricsIntervalS?: number | undefined },
  ): void {
    const have = this.limits.get(gateId)
    if (t.keepaliveS !== undefined && t.metricsIntervalS !== undefined) {
      const ms = silenceLimitMs(t.keepaliveS, t.metricsIntervalS)
      if (have?.ms !== ms || !have.offline) this.limits.set(gateId, { ms, offline: true })
    } else if (!have) {
      this.limits.set(gateId, { ms: this.o.silentAfterMs, offline: false })
    }
  }

  private heardSeq(gateId: string, session: number, seq: number): void {
    const h = this.heardSeqs.get(gateId)
    if (h && h.session === session) {
      // bounded while the ledger cannot be reached: the oldest are let go (and may count as lost)
      if (h.seqs.length >= MAX_HEARD_SEQS) h.seqs.shift()
      h.seqs.push(seq)
    } else if (!h || session > h.session) this.heardSeqs.set(gateId, { session, seqs: [seq] })
  }

  /** A gate said offline (its will or a stop): no deadline any more, from the next sweep. */
  private forget(gateId: string): void {
    this.dueSoon.delete(gateId)
    this.forgotten.add(gateId)
  }

  /** A gate was heard from now: its next deadline, shared at the next sweep. */
  private heard(gateId: string): void {
    this.forgotten.delete(gateId)
    this.dueSoon.set(gateId, this.now() + (this.limits.get(gateId)?.ms ?? this.o.silentAfterMs))
  }

  /**
   * Share the deadlines heard since the last sweep, then claim the ones that passed (each to one
   * node of the fleet): a gate that announced its keep-alive goes offline (reason 'silent': its
   * link is gone and the broker's will is on its way), any other gate stale.
   */
  async sweep(): Promise<void> {
    if (this.sweeping) return
    this.sweeping = true
    const due = this.dueSoon
    const gone = [...this.forgotten]
    const seqs = this.heardSeqs
    this.dueSoon = new Map()
    this.forgotten = new Set()
    this.heardSeqs = new Map()
    try {
      // lost messages: what no node heard (a seq recorded twice, after a retry, counts once)
      for (const gap of await this.seqs.record(seqs, this.now())) this.lost(gap)
    } catch (err) {
      // recorded at the next sweep: a seq left out would later count as lost
      for (const [g, h] of seqs) for (const seq of h.seqs) this.heardSeq(g, h.session, seq)
      this.o.log.debug({ err: (err as Error).message }, 'sequence numbers not recorded yet')
    }
    try {
      await this.silence.push(due)
      await this.silence.forget(gone)
      for (const [gateId, deadline] of await this.silence.claim(this.now(), 1_000))
        this.silent(gateId, deadline)
    } catch (err) {
      // shared again at the next sweep (a deadline heard meanwhile is later and wins)
      for (const [g, d] of due) if (!this.dueSoon.has(g)) this.dueSoon.set(g, d)
      for (const g of gone) this.forgotten.add(g)
      if (this.now() - this.silenceErrorAt > 30_000) {
        this.silenceErrorAt = this.now()
        this.o.log.warn(
          { err: (err as Error).message },
          "gate deadlines not shared; silent gates are found again when Redis is back (the broker's wills still come)",
        )
      }
    } finally {
      this.sweeping = false
    }
  }

  private lost(gap: SeqGap): void {
    const g = this.gates.get(gap.gateId)
    if (g && g.session === gap.session) {
      g.seqGaps += gap.lost
      this.save(g)
    }
    this.alert({
      kind: 'seq_gap',
      gateId: gap.gateId,
      severity: 'warning',
      summary: `gate ${gap.gateId} lost ${gap.lost} message(s)`,
      detail: { session: gap.session, from: gap.from, to: gap.to },
    })
  }

  private silent(gateId: string, deadline: number): void {
    const g = this.gates.get(gateId)
    if (!g || g.state !== 'online') return // it said offline meanwhile
    const limit = this.limits.get(gateId) ?? { ms: this.o.silentAfterMs, offline: false }
    // when anyone in the fleet last heard it (this node may have seen only part of its messages)
    g.lastSeenAt = Math.max(g.lastSeenAt ?? 0, deadline - limit.ms)
    const silentS = Math.round((this.now() - g.lastSeenAt) / 1000)
    const detail = { lastSeenAt: new Date(g.lastSeenAt).toISOString(), limitMs: limit.ms }
    if (limit.offline) {
      g.state = 'offline'
      g.reason = 'silent'
      this.save(g)
      this.alert({
        kind: 'gate_offline',
        gateId,
        severity: 'critical',
        summary: `gate ${gateId} silent for ${silentS} s, past 1.5 keep-alives: its link is down`,
        detail,
      })
    } else {
      g.state = 'stale'
      this.save(g)
      this.alert({
        kind: 'gate_silent',
        gateId,
        severity: 'warning',
        summary: `gate ${gateId} silent for ${silentS} s`,
        detail,
      })
    }
  }

  /**
   * Detections from one gate's successive metrics: the buffer growing report after report while its
   * oldest row ages, no sync for too long (stale roster), the gate's clock against the server's,
   * and an online gate hearing nothing (no adverts) for too long. Each alert is raised once on its
   * way in.
   */
  private detectFromMetrics(gateId: string, gateTs: number, m: GateMetrics): void {
    const d = this.detect
    let st = this.detectState.get(gateId)
    if (!st) {
      st = {
        grewReports: 0,
        lastPending: m.buffer_pending,
        backlog: false,
        rosterStale: false,
        skewed: false,
        quietSince: null,
        quiet: false,
      }
      this.detectState.set(gateId, st)
    }
    const now = this.now()
    st.grewReports = m.buffer_pending > st.lastPending ? st.grewReports + 1 : 0
    st.lastPending = m.buffer_pending
    const backlog = st.grewReports >= d.backlogReports && (m.buffer_oldest_pending_age_s ?? 0) > d.backlogAgeS
    if (backlog && !st.backlog)
      this.alert({
        kind: 'backlog_growth',
        gateId,
        severity: 'warning',
        summary: `gate ${gateId}: buffer growing (${m.buffer_pending} pending, oldest ${m.buffer_oldest_pending_age_s} s)`,
        detail: { pending: m.buffer_pending, oldestAgeS: m.buffer_oldest_pending_age_s },
      })
    st.backlog = backlog || (st.backlog && (m.buffer_oldest_pending_age_s ?? 0) > d.backlogAgeS)
    const stale = m.last_sync_age_s !== null && m.last_sync_age_s > d.rosterStaleS
    if (stale && !st.rosterStale)
      this.alert({
        kind: 'roster_stale',
        gateId,
        severity: 'warning',
        summary: `gate ${gateId}: no sync for ${Math.round(m.last_sync_age_s ?? 0)} s (its roster may be stale)`,
        detail: { lastSyncAgeS: m.last_sync_age_s },
      })
    st.rosterStale = stale
    const skewMs = gateTs - now
    const skewed = Math.abs(skewMs) > d.maxSkewMs
    if (skewed && !st.skewed)
      this.alert({
        kind: 'clock_skew',
        gateId,
        severity: 'warning',
        summary: `gate ${gateId}: clock off by ${Math.round(skewMs / 1000)} s`,
        detail: { skewMs },
      })
    st.skewed = skewed
    if (m.adverts_per_s > 0) {
      st.quietSince = null
      st.quiet = false
    } else {
      st.quietSince ??= now
      if (!st.quiet && now - st.quietSince > d.noAdvertsS * 1000) {
        st.quiet = true
        this.alert({
          kind: 'no_adverts',
          gateId,
          severity: 'warning',
          summary: `gate ${gateId} has heard no advert for ${Math.round((now - st.quietSince) / 1000)} s`,
          detail: { adapterState: m.adapter_state, scanRestarts: m.scan_restarts_total },
        })
      }
    }
  }

  /** Be told of every change to a gate this node hears about (the dashboard's live stream); returns the unwatch. */
  watch(fn: (g: GateFleetState) => void): () => void {
    this.watchers.add(fn)
    return () => this.watchers.delete(fn)
  }

  private save(g: GateFleetState): void {
    for (const w of this.watchers) {
      try {
        w(g)
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'fleet watcher failed')
      }
    }
    this.o.store
      ?.save(g)
      .catch((err) => this.o.log.debug({ err: (err as Error).message }, 'fleet state not shared'))
  }

  private gate(gateId: string): GateFleetState {
    let g = this.gates.get(gateId)
    if (!g) {
      g = {
        gateId,
        state: 'online',
        reason: null,
        session: null,
        lastSeq: null,
        lastSeenAt: null,
        version: null,
        bootId: null,
        startedAt: null,
        metrics: null,
        seqGaps: 0,
        lastEvent: null,
      }
      this.gates.set(gateId, g)
    }
    return g
  }

  private garbage(kind: string, gateId: string, why: string): void {
    this.stats.garbage++
    this.garbageCounter.inc({ kind })
    this.warn.warn(`garbage:${kind}`, gateId, { gateId, kind, why }, 'invalid fleet message ignored')
  }

  /** Forget a gate that left the gates table. */
  private drop(gateId: string): void {
    this.gates.delete(gateId)
    this.detectState.delete(gateId)
    this.limits.delete(gateId)
    this.heardSeqs.delete(gateId)
    this.forget(gateId)
  }

  private alert(a: FleetAlert): void {
    // a gate that floods, broken or forged, must not flood the sinks
    if (!this.admission.alertAllowed(a.gateId, a.kind)) return
    try {
      this.o.onAlert(a)
    } catch (err) {
      this.o.log.warn({ err }, 'fleet alert handler failed')
    }
  }
}
