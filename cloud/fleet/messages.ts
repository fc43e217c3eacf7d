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
  // mqtt.js has no size limit for MQTT 3.1.1: not read past the brokers' limit (a 50 MB message
  // parsed took the node from 237 to 542 MB)
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
  alert: (a: FleetAlert) => void
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
    const g = view.viewFor(gateId)
    if (g.session !== null && status.session < g.session) return // a will or status of an older session
    const wasOnline = g.state !== 'offline'
    g.session = status.session
    g.lastSeq = status.seq
    g.version = status.version
    g.bootId = status.bootId
    g.startedAt = status.startedAt
    g.state = status.state
    g.reason = status.reason ?? null
    // a will's seq is fixed when the gate connects; a retained status is from before we listened
    if (status.reason !== 'will' && !retained) liveness.heardSeq(gateId, status.session, status.seq)
    if (status.state === 'online') {
      g.lastSeenAt = this.options.now()
      liveness.learnTiming(gateId, status)
      liveness.heard(gateId)
    } else {
      liveness.forget(gateId)
    }
    view.save(g)
    if (status.state === 'offline' && wasOnline && status.reason === 'will')
      this.options.alert(willAlert(gateId, status.session))
  }

  /** A metrics message or an event. */
  private report(gateId: string, message: MetricsPayload | EventPayload): void {
    const { view, liveness, log, now } = this.options
    const g = view.viewFor(gateId)
    if (g.session !== null && message.session < g.session) return
    liveness.heardSeq(gateId, message.session, message.seq)
    if ('metrics' in message) liveness.learnTiming(gateId, message)
    const newSession = g.session !== null && message.session > g.session
    // the highest seq this node heard (with a shared subscription others hear the rest)
    g.lastSeq = g.session === message.session ? Math.max(message.seq, g.lastSeq ?? -1) : message.seq
    g.session = message.session
    g.lastSeenAt = now()
    if (silenced(g) || (newSession && g.state === 'offline')) {
      // declared silent, yet here it is: a slow link, not a dead one; or offline (a will, a stop)
      // and now heard in a newer session, whose online status this node missed
      log.info({ gateId, session: message.session }, 'gate heard from again')
      g.state = 'online'
      g.reason = null
    }
    if (g.state === 'online') liveness.heard(gateId)
    if ('metrics' in message) this.metrics(gateId, message)
    else {
      g.lastEvent = { kind: message.kind, at: message.at }
      this.options.alert(eventAlert(gateId, message))
    }
    view.save(g)
  }

  /** The gate's new metrics: into its view, through the detections, and to the history. */
  private metrics(gateId: string, message: MetricsPayload): void {
    const g = this.options.view.viewFor(gateId)
    const hot = temperatureAlert(gateId, g.metrics, message.metrics, this.options.maxTemperatureC)
    g.metrics = message.metrics
    const detected = detectFromMetrics(
      this.detections.get(gateId),
      { gateId, gateTs: message.ts, metrics: message.metrics, now: this.options.now() },
      this.options.detect,
    )
    this.detections.set(gateId, detected.memory)
    for (const a of detected.alerts) this.options.alert(a)
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
