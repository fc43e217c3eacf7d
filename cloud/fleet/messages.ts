import type { Logger } from 'pino'
import {
  type EventPayload,
  eventPayloadSchema,
  type MetricsPayload,
  metricsPayloadSchema,
  type StatusPayload,
  statusPayloadSchema,
} from '../../shared/fleet.js'
import { FLEET_MAX_PAYLOAD_BYTES } from '../../shared/mqtt-limits.js'
import {
  type DetectionMemory,
  detectFromMetrics,
  eventAlert,
  type FleetAlert,
  type FleetDetection,
  temperatureAlert,
  willAlert,
} from './detections.js'
import type { HistoryQueue } from './history.js'
import type { Liveness } from './liveness.js'
import { type FleetView, silenced } from './view.js'

/** The topics a gate publishes its health on. */
export type FleetTopicKind = 'status' | 'metrics' | 'events'

export type FleetPayload = StatusPayload | MetricsPayload | EventPayload

/**
 * A payload read and validated into the type of its topic, or why it is not one: too large, not
 * JSON, a wrong schema, or naming another gate than its topic.
 */
export function readPayload(
  kind: FleetTopicKind,
  gateId: string,
  payload: Buffer,
): { ok: true; payload: FleetPayload } | { ok: false; why: string } {
  // mqtt.js has no size limit for MQTT 3.1.1: not read past the brokers' limit, since parsing a
  // payload costs the node many times its size in memory (docs/benchmarks.md)
  if (payload.length > FLEET_MAX_PAYLOAD_BYTES)
    return { ok: false, why: `payload of ${payload.length} bytes, over ${FLEET_MAX_PAYLOAD_BYTES}` }
  let body: unknown
  try {
    body = JSON.parse(payload.toString('utf8'))
  } catch {
    return { ok: false, why: 'not JSON' }
  }
  // validated once, into the payload type of its topic
  const r =
    kind === 'status'
      ? statusPayloadSchema.safeParse(body)
      : kind === 'metrics'
        ? metricsPayloadSchema.safeParse(body)
        : eventPayloadSchema.safeParse(body)
  if (!r.success) return { ok: false, why: r.error.issues[0]?.message ?? 'invalid' }
  if (r.data.gateId !== gateId) return { ok: false, why: `payload names gate ${r.data.gateId}` }
  return { ok: true, payload: r.data }
}

export interface FleetMessagesOptions {
  view: FleetView
  liveness: Liveness
  /** the metrics history on its way to Postgres; null: none kept */
  history: HistoryQueue | null
  detect: FleetDetection
  /** temperature that raises an alert, °C */
  maxTemperatureC: number
  alert: (alert: FleetAlert) => void
  log: Logger
  now: () => number
}

/**
 * What a gate's messages do to the fleet view: its status (online, or offline by its will or a
 * stop), its metrics (and the detections from them, and the history) and its events. A message of
 * a session older than the one known is stale and ignored (the gate is already back).
 */
export class FleetMessages {
  /** per gate: what the detections remember between its reports */
  private readonly detections = new Map<string, DetectionMemory>()

  constructor(private readonly options: FleetMessagesOptions) {}

  /** One validated message of a gate whose session is believed; `retained`: sent from before we subscribed. */
  handle(gateId: string, payload: FleetPayload, retained: boolean): void {
    if ('state' in payload) this.status(gateId, payload, retained)
    else this.report(gateId, payload)
  }

  /** Forget what was remembered of a gate (it left the gates table). */
  drop(gateId: string): void {
    this.detections.delete(gateId)
  }

  private status(gateId: string, status: StatusPayload, retained: boolean): void {
    const { view, liveness } = this.options
    const gate = view.viewFor(gateId)
    if (gate.session !== null && status.session < gate.session) return // a will or status of an older session
    const wasOnline = gate.state !== 'offline'
    gate.session = status.session
    gate.lastSeq = status.seq
    gate.version = status.version
    gate.bootId = status.bootId
    gate.startedAt = status.startedAt
    gate.state = status.state
    gate.reason = status.reason ?? null
    // a will's seq is fixed when the gate connects; a retained status is from before we listened
    if (status.reason !== 'will' && !retained) liveness.heardSeq(gateId, status.session, status.seq)
    if (status.state === 'online') {
      gate.lastSeenAt = this.options.now()
      liveness.learnTiming(gateId, status)
      liveness.heard(gateId)
    } else {
      liveness.forget(gateId)
    }
    view.save(gate)
    if (status.state === 'offline' && wasOnline && status.reason === 'will')
      this.options.alert(willAlert(gateId, status.session))
  }

  /** A metrics message or an event. */
  private report(gateId: string, message: MetricsPayload | EventPayload): void {
    const { view, liveness, log, now } = this.options
    const gate = view.viewFor(gateId)
    if (gate.session !== null && message.session < gate.session) return
    liveness.heardSeq(gateId, message.session, message.seq)
    if ('metrics' in message) liveness.learnTiming(gateId, message)
    const newSession = gate.session !== null && message.session > gate.session
    // the highest seq this node heard (with a shared subscription others hear the rest)
    gate.lastSeq = gate.session === message.session ? Math.max(message.seq, gate.lastSeq ?? -1) : message.seq
    gate.session = message.session
    gate.lastSeenAt = now()
    if (silenced(gate) || (newSession && gate.state === 'offline')) {
      // declared silent, yet here it is: a slow link, not a dead one; or offline (a will, a stop)
      // and now heard in a newer session, whose online status this node missed
      log.info({ gateId, session: message.session }, 'gate heard from again')
      gate.state = 'online'
      gate.reason = null
    }
    if (gate.state === 'online') liveness.heard(gateId)
    if ('metrics' in message) this.metrics(gateId, message)
    else {
      gate.lastEvent = { kind: message.kind, at: message.at }
      this.options.alert(eventAlert(gateId, message))
    }
    view.save(gate)
  }

  /** The gate's new metrics: into its view, through the detections, and to the history. */
  private metrics(gateId: string, message: MetricsPayload): void {
    const gate = this.options.view.viewFor(gateId)
    const hot = temperatureAlert(gateId, gate.metrics, message.metrics, this.options.maxTemperatureC)
    gate.metrics = message.metrics
    const detected = detectFromMetrics(
      this.detections.get(gateId),
      { gateId, gateTs: message.ts, metrics: message.metrics, now: this.options.now() },
      this.options.detect,
    )
    this.detections.set(gateId, detected.memory)
    for (const alert of detected.alerts) this.options.alert(alert)
    this.options.history?.push({
      gateId,
      ts: message.ts,
      session: message.session,
      seq: message.seq,
      metrics: message.metrics,
    })
    if (hot) this.options.alert(hot)
  }
}
