import { readFileSync } from 'node:fs'
import os from 'node:os'
import type { GateEventKind, GateMetrics } from '../../shared/fleet.js'
import type { AgentStatus } from '../../shared/status.js'
import { realProbes } from '../doctor/system-checks.js'

/** The Pi's SoC temperature (°C) from the thermal zone, or null where there is none. */
export function readTemperatureC(file = '/sys/class/thermal/thermal_zone0/temp'): number | null {
  try {
    const milli = Number(readFileSync(file, 'utf8').trim())
    return Number.isFinite(milli) ? Math.round(milli / 100) / 10 : null
  } catch {
    return null
  }
}

/** Bytes free for this user where `dir` is, or null when it cannot be read. */
export function diskFreeBytes(dir: string): number | null {
  try {
    const stats = realProbes.statfs(dir)
    return stats.bavail * stats.bsize
  } catch {
    return null
  }
}

/** Metrics with units in their names, from the agent's status and the machine. */
export class GateMetricsSampler {
  private lastCpu = process.cpuUsage()
  private lastAt = performance.now()

  constructor(private readonly dataDir: string) {}

  sample(status: AgentStatus, now: number): GateMetrics {
    const started = performance.now()
    const cpu = process.cpuUsage(this.lastCpu)
    const wallUs = Math.max(1, (started - this.lastAt) * 1000)
    this.lastCpu = process.cpuUsage()
    this.lastAt = started
    const lastSyncAt = status.sync?.lastSuccessAt ? Date.parse(status.sync.lastSuccessAt) : null
    return {
      cpu_percent: Math.round(((cpu.user + cpu.system) / wallUs) * 1000) / 10,
      load1: os.loadavg()[0] ?? 0,
      mem_used_bytes: os.totalmem() - os.freemem(),
      mem_total_bytes: os.totalmem(),
      rss_bytes: process.memoryUsage.rss(),
      temperature_c: readTemperatureC(),
      disk_free_bytes: diskFreeBytes(this.dataDir),
      uptime_s: status.uptimeS ?? 0,
      adverts_per_s: status.advertsPerS ?? 0,
      decisions_admit_total: status.counters?.admit ?? 0,
      decisions_deny_total: status.counters
        ? Object.values(status.counters.deny).reduce((a, b) => a + b, 0)
        : 0,
      l1_hit_ratio: status.l1 ? Math.min(1, Math.max(0, status.l1.hitRate ?? 0)) : null,
      buffer_pending: status.buffer.pending + status.buffer.inFlight,
      buffer_oldest_pending_age_s: status.buffer.oldestPendingAgeS,
      last_sync_age_s:
        lastSyncAt === null || Number.isNaN(lastSyncAt) ? null : Math.max(0, (now - lastSyncAt) / 1000),
      clock_offset_ms: status.sync?.clockOffsetMs ?? null,
      adapter_state: status.source?.adapterState ?? 'none',
      scan_restarts_total: status.source?.scanRestarts ?? 0,
      disk_write_bytes_total: status.writes?.ioWriteBytes ?? null,
      roster_version: status.roster.version,
    }
  }
}

/** The thresholds past which the gate raises a fleet event. */
export interface EventWatchLimits {
  /** below this free space the disk is low, bytes */
  diskLowBytes: number
  /** the buffer counts as growing when its oldest row is older than this, s, and it grew since the last look */
  backlogAgeS: number
  /** the roster is stale when no pull succeeded for this long while a cloud is configured, s */
  rosterStaleS: number
  /** the clock is unsynchronised when it is this far from the cloud's, ms */
  maxClockOffsetMs: number
}

/**
 * Turns successive metrics into events, each raised once on its way in and (for the adapter) once on
 * its way out: adapter lost and back, disk low, backlog growing, roster stale.
 */
export class EventWatch {
  private adapterUp: boolean | null = null
  private diskLow = false
  private backlog = false
  private lastPending = 0
  private rosterStale = false
  private clockOff = false

  constructor(private readonly limits: EventWatchLimits) {}

  check(
    metrics: GateMetrics,
    lastRosterPullAgeS: number | null,
  ): Array<{ kind: GateEventKind; detail: Record<string, unknown> }> {
    const out: Array<{ kind: GateEventKind; detail: Record<string, unknown> }> = []
    const up = metrics.adapter_state === 'poweredOn' || metrics.adapter_state === 'n/a'
    if (this.adapterUp === true && !up)
      out.push({ kind: 'adapter_lost', detail: { state: metrics.adapter_state } })
    if (this.adapterUp === false && up)
      out.push({ kind: 'adapter_back', detail: { state: metrics.adapter_state } })
    this.adapterUp = up
    const low = metrics.disk_free_bytes !== null && metrics.disk_free_bytes < this.limits.diskLowBytes
    if (low && !this.diskLow) out.push({ kind: 'disk_low', detail: { freeBytes: metrics.disk_free_bytes } })
    this.diskLow = low
    const growing =
      metrics.buffer_pending > this.lastPending &&
      (metrics.buffer_oldest_pending_age_s ?? 0) > this.limits.backlogAgeS
    if (growing && !this.backlog)
      out.push({
        kind: 'backlog_growing',
        detail: { pending: metrics.buffer_pending, oldestAgeS: metrics.buffer_oldest_pending_age_s },
      })
    this.backlog =
      growing || (this.backlog && (metrics.buffer_oldest_pending_age_s ?? 0) > this.limits.backlogAgeS)
    this.lastPending = metrics.buffer_pending
    const stale = lastRosterPullAgeS !== null && lastRosterPullAgeS > this.limits.rosterStaleS
    if (stale && !this.rosterStale)
      out.push({ kind: 'roster_stale', detail: { lastPullAgeS: lastRosterPullAgeS } })
    this.rosterStale = stale
    const off =
      metrics.clock_offset_ms !== null && Math.abs(metrics.clock_offset_ms) > this.limits.maxClockOffsetMs
    if (off && !this.clockOff)
      out.push({ kind: 'clock_unsynchronised', detail: { offsetMs: metrics.clock_offset_ms } })
    this.clockOff = off
    return out
  }
}
