import type { Checkin } from './checkin.js'

/** `gatectl status` as JSON: the daemon's view, or the SQLite file's when the daemon is down. */
export interface AgentStatus {
  daemon: 'running' | 'down'
  gateId: string
  version: string
  bootId: string | null
  startedAt: string | null
  uptimeS: number | null
  source: {
    kind: string
    adapterState: string
    radio: string
    scanning: boolean
    scanRestarts: number
    lastAdvertAgeS: number | null
    detail?: string | undefined
  } | null
  advertsPerS: number | null
  counters: {
    adverts: number
    sightings: number
    arrivals: number
    suppressed: number
    admit: number
    deny: Record<string, number>
    withheld: number
  } | null
  decoders: Record<string, number> | null
  l1: { hitRate: number | null; entries: number } | null
  buffer: {
    pending: number
    inFlight: number
    synced: number
    oldestPendingAgeS: number | null
  }
  writes: { commits: number; rowsWritten: number; commitErrors: number; ioWriteBytes: number | null } | null
  roster: { version: number; active: number; revoked: number; inactive: number }
  lastDecision: Checkin | null
  lastSync: { at: string; ok: boolean } | null
  mqtt: { state: string }
}
