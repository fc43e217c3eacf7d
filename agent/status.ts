import { readFileSync } from 'node:fs'
import type { AgentStatus, SyncStatus } from '../shared/status.js'
import type { Clock } from './clock.js'
import type { AgentConfig } from './config/schema.js'
import { readScheduling } from './lifecycle/scheduling.js'
import type { AgentParts, RunFacts } from './parts.js'
import type { SyncerState } from './sync/syncer.js'

/** What a status snapshot is made from: the running parts, this run's facts and the agent's world. */
export interface StatusSources {
  parts: Readonly<AgentParts>
  run: Readonly<RunFacts>
  config: AgentConfig
  clock: Clock
}

/** A status snapshot for gatectl and the MQTT metrics. */
export function agentStatus(from: StatusSources): AgentStatus {
  const { parts, run, clock, config } = from
  const { outbox, pipeline, validator, roster, decoderCounters } = parts
  const monoNow = clock.mono()
  const source = parts.source?.status()
  const counts = outbox?.counts()
  return {
    daemon: 'running',
    gateId: config.gateId,
    version: run.version,
    bootId: run.bootId,
    startedAt: run.startedAt ? new Date(run.startedAt).toISOString() : null,
    uptimeS: run.startedAt ? Math.round((monoNow - run.startedMono) / 1000) : null,
    source: source
      ? {
          kind: source.kind,
          adapterState: source.adapterState,
          radio: source.radio,
          scanning: source.scanning,
          scanRestarts: source.scanRestarts,
          lastAdvertAgeS:
            source.lastAdvertAt === null ? null : Math.round((monoNow - source.lastAdvertAt) / 100) / 10,
          detail: source.detail,
        }
      : null,
    advertsPerS: pipeline ? pipeline.advertRate.rate(monoNow) : null,
    counters: { ...run.counters, deny: { ...run.counters.deny } },
    decoders: decoderCounters ? { ...decoderCounters } : null,
    l1: validator ? { hitRate: validator.hitRate(), entries: validator.size() } : null,
    buffer: {
      pending: counts?.pending ?? 0,
      inFlight: counts?.inFlight ?? 0,
      synced: counts?.synced ?? 0,
      oldestPendingAgeS:
        counts?.oldestUnsyncedMs == null
          ? null
          : Math.max(0, Math.round((clock.now() - counts.oldestUnsyncedMs) / 1000)),
    },
    writes: outbox ? { ...outbox.stats, waiting: outbox.queued(), ioWriteBytes: readIoWriteBytes() } : null,
    access: parts.access ? parts.access.status() : null,
    roster: roster
      ? { version: roster.version(), ...roster.counts() }
      : { version: 0, active: 0, revoked: 0, inactive: 0 },
    lastDecision: run.lastDecision,
    lastSync: lastSync(parts.syncer?.status()),
    sync: syncStatus(from),
    mqtt: { state: parts.reporter?.state ?? (config.mqtt.url ? 'not started' : 'not configured') },
    scheduling: readScheduling(),
  }
}

/** The last sync attempt as the status shows it: the last success, or the failure after it. */
function lastSync(syncer: SyncerState | undefined): AgentStatus['lastSync'] {
  if (!syncer?.lastAttemptAt)
    return syncer?.lastSuccessAt ? { at: new Date(syncer.lastSuccessAt).toISOString(), ok: true } : null
  const ok = syncer.lastError === null
  return {
    at: new Date(ok && syncer.lastSuccessAt ? syncer.lastSuccessAt : syncer.lastAttemptAt).toISOString(),
    ok,
    error: syncer.lastError,
  }
}

/** What the syncer and the roster puller are doing. */
export function syncStatus(from: StatusSources): SyncStatus {
  const { parts, clock, config } = from
  const syncer = parts.syncer?.status()
  const puller = parts.puller?.status()
  const iso = (t: number | null | undefined) => (t ? new Date(t).toISOString() : null)
  return {
    state: syncer ? syncer.state : 'disabled',
    cloudUrl: config.cloud.url ?? null,
    lastAttemptAt: iso(syncer?.lastAttemptAt),
    lastSuccessAt: iso(syncer?.lastSuccessAt),
    lastError: syncer?.lastError ?? null,
    consecutiveFailures: syncer?.consecutiveFailures ?? 0,
    nextAttemptInS: syncer?.nextAttemptAt
      ? Math.max(0, Math.round((syncer.nextAttemptAt - clock.now()) / 100) / 10)
      : null,
    batchSize: syncer?.batchSize ?? config.cloud.batchSize,
    accepted: syncer?.accepted ?? 0,
    duplicates: syncer?.duplicates ?? 0,
    rejected: syncer?.rejected ?? 0,
    clockOffsetMs: syncer?.clockOffsetMs ?? null,
    drainYielding: syncer?.yielding ?? false,
    drainYields: syncer?.yields ?? 0,
    storeThread: {
      state: parts.storeThread?.state ?? 'off',
      starts: parts.storeThread?.stats.starts ?? 0,
    },
    roster: {
      cursor: puller?.cursor ?? parts.roster?.cloudCursor() ?? 0,
      lastPullAt: iso(puller?.lastPullAt),
      lastError: puller?.lastError ?? null,
      applied: puller?.applied ?? 0,
    },
  }
}

/** Bytes this process caused to be written to storage (/proc/self/io), or null where unavailable. */
export function readIoWriteBytes(): number | null {
  try {
    const match = /write_bytes:\s*(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))
    return match ? Number(match[1]) : null
  } catch {
    return null
  }
}
