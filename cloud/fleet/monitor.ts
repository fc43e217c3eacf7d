import mqtt from 'mqtt'
import type { Logger } from 'pino'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Command, CommandResponse } from '../../shared/fleet.js'
import { ThrottledLog } from '../../shared/throttled-log.js'
import { FleetAdmission, type KnownGates, type UnknownGate } from './admission.js'
import type { AlertRate } from './alert-limit.js'
import { GateCommands } from './commands.js'
import { type FleetAlert, type FleetDetection, fleetDetectionDefaults } from './detections.js'
import { HistoryQueue, type MetricsRow } from './history.js'
import { Liveness, SWEEP_MS } from './liveness.js'
import { FleetMessages, type FleetTopicKind, readPayload } from './messages.js'
import { LocalSeqLedger, type SeqLedger } from './seqs.js'
import { LocalSilenceClock, type SilenceClock } from './silence.js'
import { type FleetStateStore, FleetView, type GateFleetState } from './view.js'

// the monitor's public types, where its users have always found them
export { type FleetAlert, type FleetDetection, fleetDetectionDefaults } from './detections.js'
export type { MetricsRow } from './history.js'
export { silenceLimitMs } from './liveness.js'
export { type FleetStateStore, type GateFleetState, newer } from './view.js'

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
  onAlert: (alert: FleetAlert) => void
  username?: string | undefined
  password?: string | undefined
  now?: () => number
}

/**
 * The cloud's view of the fleet, from MQTT. Status is subscribed by every node (it is retained, and
 * brokers do not send retained messages to shared subscriptions), metrics and events through a
 * shared subscription so that several nodes split the fleet. Every payload is validated; garbage
 * is counted and logged, never a crash. This class holds the MQTT connection and routes each
 * message by its topic; what a message does to the view is in messages.ts, whether gates live in
 * liveness.ts, the alerts in detections.ts and the commands to gates in commands.ts.
 */
export class FleetMonitor {
  private client: mqtt.MqttClient | null = null
  private timer: NodeJS.Timeout | null = null
  private sweeps = 0
  private readonly view: FleetView
  private readonly liveness: Liveness
  private readonly messages: FleetMessages
  private readonly commands: GateCommands
  private readonly history: HistoryQueue | null
  private readonly now: () => number
  readonly stats = {
    /** messages received, on every topic */
    messages: 0,
    /** messages that were not valid fleet payloads (not read further) */
    garbage: 0,
    /** metrics history rows written */
    historyRows: 0,
    /** history rows dropped, the oldest first, while the database was away too long */
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

  constructor(private readonly options: FleetMonitorOptions) {
    this.now = options.now ?? Date.now
    this.warn = new ThrottledLog(options.log, 60_000, 256, this.now)
    this.admission = new FleetAdmission({
      known: options.knownGates,
      rate: options.alertRate,
      stats: this.stats,
      warn: this.warn,
      registry: options.registry,
      now: this.now,
    })
    this.view = new FleetView(options.store, options.log)
    const alert = (raised: FleetAlert) => this.alert(raised)
    this.liveness = new Liveness({
      view: this.view,
      silence: options.silence ?? new LocalSilenceClock(),
      seqs: options.seqs ?? new LocalSeqLedger(),
      silentAfterMs: options.silentAfterMs,
      alert,
      log: options.log,
      now: this.now,
    })
    this.history = options.history
      ? new HistoryQueue(options.history, {
          stats: this.stats,
          warn: this.warn,
          registry: options.registry,
        })
      : null
    this.messages = new FleetMessages({
      view: this.view,
      liveness: this.liveness,
      history: this.history,
      detect: { ...fleetDetectionDefaults, ...options.detect },
      maxTemperatureC: options.maxTemperatureC,
      alert,
      log: options.log,
      now: this.now,
    })
    this.commands = new GateCommands(this.now)
    // a gate removed from the table leaves the view (and a gate taken before the first read, unknown)
    options.knownGates?.onLoad(() => {
      for (const id of this.view.ids()) if (!this.admission.belongs(id)) this.drop(id)
    })
    this.garbageCounter = new Counter({
      name: 'fleet_garbage_messages_total',
      help: 'MQTT messages that were not valid fleet payloads, by topic kind',
      labelNames: ['kind'],
      registers: [options.registry],
    })
    const gatesGauge: Gauge<'state'> = new Gauge({
      name: 'fleet_gates',
      help: 'Gates by state (online, stale, offline)',
      labelNames: ['state'],
      registers: [options.registry],
      collect: () => {
        for (const state of ['online', 'stale', 'offline'] as const)
          gatesGauge.set({ state }, this.view.count(state))
      },
    })
  }

  async start(): Promise<void> {
    // read before subscribing: the retained statuses of the whole fleet come at once
    await this.options.knownGates?.start()
    const client = mqtt.connect(this.options.url, {
      clientId: `gate-cloud-fleet-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      username: this.options.username,
      password: this.options.password,
      reconnectPeriod: 2_000,
      // 3.1.1: shared subscriptions work with it on Mosquitto, EMQX and HiveMQ, and aedes speaks nothing newer
      protocolVersion: 4,
    })
    this.client = client
    client.on('error', (err) => this.options.log.warn({ err: err.message }, 'fleet MQTT error'))
    client.on('connect', () => {
      const share = this.options.group ? `$share/${this.options.group}/` : ''
      client
        .subscribeAsync({
          'gates/+/status': { qos: 1 },
          [`${share}gates/+/metrics`]: { qos: 0 },
          [`${share}gates/+/events`]: { qos: 1 },
        })
        .catch((err) => this.options.log.warn({ err: (err as Error).message }, 'fleet subscription failed'))
    })
    client.on('message', (topic, payload, packet) => this.handle(topic, payload, packet.retain))
    this.timer = setInterval(() => {
      void this.sweep()
      if (++this.sweeps % (1_000 / SWEEP_MS) === 0) void this.flushHistory()
    }, SWEEP_MS)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    this.options.knownGates?.stop()
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
  command(
    gateId: string,
    cmd: Command['cmd'],
    params: Record<string, unknown>,
    secret: string,
    timeoutMs = 10_000,
  ): Promise<CommandResponse> {
    return this.commands.send(this.client, gateId, cmd, params, secret, timeoutMs)
  }

  list(): GateFleetState[] {
    return this.view.list()
  }

  /** The whole fleet: every node's share from the shared store when there is one, else this node's. */
  fleet(): Promise<GateFleetState[]> {
    return this.view.merged((view) => this.admission.keepsView(view))
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
    return this.view.get(gateId) ?? null
  }

  /** Be told of every change to a gate this node hears about (the dashboard's live stream); returns the unwatch. */
  watch(fn: (gate: GateFleetState) => void): () => void {
    return this.view.watch(fn)
  }

  /**
   * Share the deadlines heard since the last sweep, then claim the ones that passed (each to one
   * node of the fleet): a gate that announced its keep-alive goes offline (reason 'silent': its
   * link is gone and the broker's will is on its way), any other gate stale.
   */
  sweep(): Promise<void> {
    return this.liveness.sweep()
  }

  /** One message (public for tests: the same path as the broker's); `retained`: sent from before we subscribed. */
  handle(topic: string, payload: Buffer, retained = false): void {
    this.stats.messages++
    const match = /^gates\/([^/]+)\/(status|metrics|events)$/.exec(topic)
    if (!match) return
    const gateId = match[1] as string
    const kind = match[2] as FleetTopicKind
    if (payload.length === 0) return // a cleared retained status
    // before reading it: a made-up topic name must not create a gate, here, in Redis or in the alerts
    if (!this.admission.admit(gateId, kind, (id) => this.view.has(id), this.view.size)) return
    const read = readPayload(kind, gateId, payload)
    if (!read.ok) {
      this.reject(kind, gateId, read.why)
      return
    }
    // believed, it would hide every real session of the gate, here and in Redis, and go to the history
    if (!this.admission.believed(gateId, kind, read.payload.session)) return
    this.messages.handle(gateId, read.payload, retained)
  }

  /** A message that is not a valid fleet payload: counted and logged (sparingly), never read further. */
  private reject(kind: FleetTopicKind, gateId: string, why: string): void {
    this.stats.garbage++
    this.garbageCounter.inc({ kind })
    this.warn.warn(`garbage:${kind}`, gateId, { gateId, kind, why }, 'invalid fleet message ignored')
  }

  /** Forget a gate that left the gates table. */
  private drop(gateId: string): void {
    this.view.delete(gateId)
    this.messages.drop(gateId)
    this.liveness.drop(gateId)
  }

  /** Raise an alert, within its gate's rate for its kind. */
  private alert(raised: FleetAlert): void {
    // a gate that floods, broken or forged, must not flood the sinks
    if (!this.admission.alertAllowed(raised.gateId, raised.kind)) return
    try {
      this.options.onAlert(raised)
    } catch (err) {
      this.options.log.warn({ err }, 'fleet alert handler failed')
    }
  }
}
