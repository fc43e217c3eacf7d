import type { EventPayload, GateMetrics } from '../../shared/fleet.js'
import type { SeqGap } from './seqs.js'

/**
 * What the fleet monitor says about its gates. Every function here is pure: it turns what a gate
 * reported (and what was remembered of its earlier reports) into the alerts to raise; the monitor
 * raises them, within each gate's alert rate.
 */
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

/** The thresholds of the detections from the metrics. */
export interface FleetDetection {
  /** the buffer grew on this many consecutive reports (and its oldest row is older than `backlogAgeS`) */
  backlogReports: number
  /** ... and its oldest row is older than this, s */
  backlogAgeS: number
  /** no successful sync (and so no roster pull) for this long, s */
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

/** Per gate: what the detections remember between its metrics reports. */
export interface DetectionMemory {
  /** consecutive reports in which the buffer grew */
  grewReports: number
  /** the buffer's pending rows at the last report */
  lastPending: number
  /** each alert is raised once on its way in: whether its condition held at the last report */
  backlog: boolean
  rosterStale: boolean
  skewed: boolean
  /** since when the gate has reported no adverts, ms since the epoch; null while it hears some */
  quietSince: number | null
  quiet: boolean
}

/**
 * Detections from one gate's successive metrics: the buffer growing report after report while its
 * oldest row ages, no sync for too long (stale roster), the gate's clock against the server's,
 * and an online gate hearing nothing (no adverts) for too long. Each alert is raised once on its
 * way in. `previous`: the memory of the gate's last report (none for its first); `gateTs`: the
 * gate's time of the report and `now` the server's, ms since the epoch.
 */
export function detectFromMetrics(
  previous: DetectionMemory | undefined,
  report: { gateId: string; gateTs: number; metrics: GateMetrics; now: number },
  limits: FleetDetection,
): { memory: DetectionMemory; alerts: FleetAlert[] } {
  const { gateId, gateTs, metrics, now } = report
  const last = previous ?? {
    grewReports: 0,
    lastPending: metrics.buffer_pending,
    backlog: false,
    rosterStale: false,
    skewed: false,
    quietSince: null,
    quiet: false,
  }
  const alerts: FleetAlert[] = []
  const oldestAgeS = metrics.buffer_oldest_pending_age_s ?? 0
  const grewReports = metrics.buffer_pending > last.lastPending ? last.grewReports + 1 : 0
  const backlog = grewReports >= limits.backlogReports && oldestAgeS > limits.backlogAgeS
  if (backlog && !last.backlog)
    alerts.push({
      kind: 'backlog_growth',
      gateId,
      severity: 'warning',
      summary: `gate ${gateId}: buffer growing (${metrics.buffer_pending} pending, oldest ${metrics.buffer_oldest_pending_age_s} s)`,
      detail: { pending: metrics.buffer_pending, oldestAgeS: metrics.buffer_oldest_pending_age_s },
    })
  const rosterStale = metrics.last_sync_age_s !== null && metrics.last_sync_age_s > limits.rosterStaleS
  if (rosterStale && !last.rosterStale)
    alerts.push({
      kind: 'roster_stale',
      gateId,
      severity: 'warning',
      summary: `gate ${gateId}: no sync for ${Math.round(metrics.last_sync_age_s ?? 0)} s (its roster may be stale)`,
      detail: { lastSyncAgeS: metrics.last_sync_age_s },
    })
  const skewMs = gateTs - now
  const skewed = Math.abs(skewMs) > limits.maxSkewMs
  if (skewed && !last.skewed)
    alerts.push({
      kind: 'clock_skew',
      gateId,
      severity: 'warning',
      summary: `gate ${gateId}: clock off by ${Math.round(skewMs / 1000)} s`,
      detail: { skewMs },
    })
  let quietSince: number | null = null
  let quiet = false
  if (metrics.adverts_per_s <= 0) {
    quietSince = last.quietSince ?? now
    quiet = last.quiet
    if (!quiet && now - quietSince > limits.noAdvertsS * 1000) {
      quiet = true
      alerts.push({
        kind: 'no_adverts',
        gateId,
        severity: 'warning',
        summary: `gate ${gateId} has heard no advert for ${Math.round((now - quietSince) / 1000)} s`,
        detail: { adapterState: metrics.adapter_state, scanRestarts: metrics.scan_restarts_total },
      })
    }
  }
  const memory: DetectionMemory = {
    grewReports,
    lastPending: metrics.buffer_pending,
    backlog: backlog || (last.backlog && oldestAgeS > limits.backlogAgeS),
    rosterStale,
    skewed,
    quietSince,
    quiet,
  }
  return { memory, alerts }
}

/** A temperature over `maxC` (°C), raised once on its way in: not while the previous report was over it too. */
export function temperatureAlert(
  gateId: string,
  previous: GateMetrics | null,
  current: GateMetrics,
  maxC: number,
): FleetAlert | null {
  // before the gate's first report counts as 0 °C
  const before = previous ? previous.temperature_c : 0
  const wasOver = before !== null && before > maxC
  if (current.temperature_c === null || current.temperature_c <= maxC || wasOver) return null
  return {
    kind: 'high_temperature',
    gateId,
    severity: 'warning',
    summary: `gate ${gateId} at ${current.temperature_c} °C`,
    detail: { temperatureC: current.temperature_c },
  }
}

/** An event the gate raised itself (adapter lost and back, disk low, ...). */
export function eventAlert(gateId: string, event: EventPayload): FleetAlert {
  return {
    kind: 'gate_event',
    gateId,
    severity: event.kind === 'adapter_back' ? 'info' : 'warning',
    summary: `gate ${gateId}: ${event.kind}`,
    detail: { event: event.kind, ...event.detail },
  }
}

/** The broker published the gate's will: its link dropped. */
export function willAlert(gateId: string, session: number): FleetAlert {
  return {
    kind: 'gate_offline',
    gateId,
    severity: 'critical',
    summary: `gate ${gateId} lost its connection (last will)`,
    detail: { session },
  }
}

/** Messages of a gate's session that no node heard. */
export function seqGapAlert(gap: SeqGap): FleetAlert {
  return {
    kind: 'seq_gap',
    gateId: gap.gateId,
    severity: 'warning',
    summary: `gate ${gap.gateId} lost ${gap.lost} message(s)`,
    detail: { session: gap.session, from: gap.from, to: gap.to },
  }
}

/**
 * Nothing heard from a gate since `lastSeenAt` (ms since the epoch) until `now`, past its limit
 * (`limitMs`): offline when the limit came from the keep-alive it announced (its link is down), else
 * silent (stale).
 */
export function silenceAlert(
  gateId: string,
  silence: { lastSeenAt: number; now: number; limitMs: number; offline: boolean },
): FleetAlert {
  const silentS = Math.round((silence.now - silence.lastSeenAt) / 1000)
  const detail = { lastSeenAt: new Date(silence.lastSeenAt).toISOString(), limitMs: silence.limitMs }
  return silence.offline
    ? {
        kind: 'gate_offline',
        gateId,
        severity: 'critical',
        summary: `gate ${gateId} silent for ${silentS} s, past 1.5 keep-alives: its link is down`,
        detail,
      }
    : {
        kind: 'gate_silent',
        gateId,
        severity: 'warning',
        summary: `gate ${gateId} silent for ${silentS} s`,
        detail,
      }
}
