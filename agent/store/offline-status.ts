import type { Checkin } from '../../shared/checkin.js'
import type { AgentStatus } from '../../shared/status.js'
import { productVersion } from '../../shared/version.js'
import type { Db } from './db.js'
import { outboxCounts } from './outbox-queries.js'

/** Status from the SQLite file alone, for when the daemon is down. */
export function offlineStatus(db: Db, gateId: string, now: number): AgentStatus {
  const boot = db
    .prepare('SELECT boot_id, started_ms, version FROM boots ORDER BY started_ms DESC LIMIT 1')
    .get() as { boot_id: string; started_ms: number; version: string } | undefined
  const counts = outboxCounts(db)
  const roster = { version: 0, active: 0, revoked: 0, inactive: 0 }
  const stored = db.prepare("SELECT value FROM meta WHERE key = 'roster_version'").get() as
    | { value: string }
    | undefined
  roster.version = Number(stored?.value ?? 0)
  for (const row of db
    .prepare('SELECT status, count(*) AS count FROM roster GROUP BY status')
    .all() as Array<{
    status: 'active' | 'revoked' | 'inactive'
    count: number
  }>) {
    roster[row.status] = row.count
  }
  const last = db
    .prepare(
      `SELECT id, gate_id AS gateId, token, participant_id AS participantId, method, decision, reason, rssi, wall_ms AS ts,
        mono_ms AS monoMs, boot_id AS bootId, boot_seq AS bootSeq, roster_version AS rosterVersion
       FROM checkins ORDER BY seq_no DESC LIMIT 1`,
    )
    .get() as Checkin | undefined
  const lastSyncAt = (
    db.prepare("SELECT value FROM meta WHERE key = 'last_sync_at'").get() as { value: string } | undefined
  )?.value
  return {
    daemon: 'down',
    gateId,
    version: boot?.version ?? productVersion(),
    bootId: boot?.boot_id ?? null,
    startedAt: boot ? new Date(boot.started_ms).toISOString() : null,
    uptimeS: null,
    source: null,
    advertsPerS: null,
    counters: null,
    decoders: null,
    l1: null,
    buffer: {
      pending: counts.pending,
      inFlight: counts.inFlight,
      synced: counts.synced,
      oldestPendingAgeS:
        counts.oldestUnsyncedMs === null
          ? null
          : Math.max(0, Math.round((now - counts.oldestUnsyncedMs) / 1000)),
    },
    writes: null,
    roster,
    lastDecision: last ?? null,
    lastSync: lastSyncAt ? { at: new Date(Number(lastSyncAt)).toISOString(), ok: true } : null,
    sync: null,
    mqtt: { state: 'unknown (daemon down)' },
  }
}
