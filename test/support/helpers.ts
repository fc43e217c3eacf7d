import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { pino } from 'pino'
import { v4 as uuidv4 } from 'uuid'
import { systemClock } from '../../agent/clock.js'
import type { ReporterDeps } from '../../agent/report/mqtt-reporter.js'
import type { Claim } from '../../agent/store/claims.js'
import type { Db } from '../../agent/store/db.js'
import type { Outbox } from '../../agent/store/outbox.js'
import type { GateMetrics } from '../../shared/fleet.js'

/** A temporary directory removed by the returned cleanup. */
export function tempDir(prefix = 'gate-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** A logger that discards everything (tests assert behaviour, not log lines). */
export const silentLog = pino({ level: 'silent' })

/** A port free on loopback a moment ago (for a server the test starts, or a closed one to fail against). */
export function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0))
    })
  })
}

/** A plausible gate metrics payload (fleet and reporter tests). */
export function sampleGateMetrics(over: Partial<GateMetrics> = {}): GateMetrics {
  return {
    cpu_percent: 3,
    load1: 0.1,
    mem_used_bytes: 1,
    mem_total_bytes: 2,
    rss_bytes: 1,
    temperature_c: 55,
    disk_free_bytes: 10,
    uptime_s: 5,
    adverts_per_s: 12,
    decisions_admit_total: 4,
    decisions_deny_total: 1,
    l1_hit_ratio: 0.9,
    buffer_pending: 0,
    buffer_oldest_pending_age_s: null,
    last_sync_age_s: 2,
    clock_offset_ms: null,
    adapter_state: 'poweredOn',
    scan_restarts_total: 0,
    disk_write_bytes_total: null,
    roster_version: 7,
    ...over,
  }
}

/** The local Mosquitto (MQTT_URL to use another broker). */
export const MQTT_URL = process.env['MQTT_URL'] ?? 'mqtt://127.0.0.1:1883'

/**
 * What a test gate's MqttReporter needs: a fresh boot, the system clock, a silent log, sample
 * metrics and commands that do nothing, on the local broker; `over` sets the rest (gateId first).
 */
export function reporterDeps(db: Db, over: Partial<ReporterDeps> & { gateId: string }): ReporterDeps {
  const none = async () => null
  return {
    url: MQTT_URL,
    bootId: uuidv4(),
    version: '0.1.0',
    startedAt: new Date().toISOString(),
    db,
    clock: systemClock,
    log: silentLog,
    intervalMs: 200,
    metrics: () => sampleGateMetrics(),
    commands: {
      resync_roster: none,
      sync_now: none,
      restart_scan: none,
      set_log_level: none,
      checkout: none,
    },
    ...over,
  }
}

/** `n` deny decisions for unknown tokens 00000000, 00000001, ... (monoMs = index), committed. */
export function appendDenied(outbox: Outbox, n: number): void {
  for (let i = 0; i < n; i++)
    outbox.append(
      {
        token: `${i}`.padStart(8, '0'),
        participantId: null,
        decision: 'deny',
        reason: 'unknown',
        rssi: -60,
        rosterVersion: 0,
        monoMs: i,
      },
      () => {},
    )
  outbox.flush()
}

/** The cloud's answer "stored every record of this claim", recorded. */
export function recordAllStored(outbox: Outbox, claim: Claim): Promise<{ synced: number; refused: number }> {
  return outbox.recordSync(
    claim,
    claim.records.map((r) => r.id),
  )
}
