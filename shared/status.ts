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
  writes: {
    commits: number
    rowsWritten: number
    /** commits that failed since the agent started */
    commitErrors: number
    /** decisions dropped after waiting too long for a failing disk, since start */
    expired?: number
    /** the last commit failed: decisions are withheld now */
    failing?: boolean
    /** decisions waiting in memory for their commit now */
    waiting?: number
    ioWriteBytes: number | null
  } | null
  roster: { version: number; active: number; revoked: number; inactive: number }
  /** the access policy in force (null: none, or the daemon is down) */
  access?: AccessStatus | null
  lastDecision: Checkin | null
  /** the last sync attempt: when, and whether it worked */
  lastSync: { at: string; ok: boolean; error?: string | null } | null
  sync: SyncStatus | null
  mqtt: { state: string }
  /** how the kernel schedules the daemon's event-loop thread (null: daemon down, or no /proc) */
  scheduling?: Scheduling | null
}

/** The access policy as this gate applies it: its lane, and per zone its counts and allotment. */
export interface AccessStatus {
  policyVersion: number
  /** this gate's lane (null: the policy gives it none, and it denies every entry) */
  lane: { from: string | null; to: string | null } | null
  zones: Array<{ zone: string; period: string; entries: number; exits: number; allotment: number | null }>
}

/** How the kernel schedules a thread: its policy, realtime priority (0 when not realtime) and nice. */
export interface Scheduling {
  policy: 'normal' | 'fifo' | 'rr' | 'batch' | 'idle' | 'deadline'
  rtPriority: number
  nice: number
}

/** What the syncer and the roster puller are doing (`gatectl sync`). */
export interface SyncStatus {
  state: 'disabled' | 'idle' | 'syncing' | 'backoff' | 'auth-failed'
  cloudUrl: string | null
  lastAttemptAt: string | null
  lastSuccessAt: string | null
  lastError: string | null
  consecutiveFailures: number
  nextAttemptInS: number | null
  batchSize: number
  /** since start: records the cloud stored, already had, and refused */
  accepted: number
  duplicates: number
  rejected: number
  roster: { cursor: number; lastPullAt: string | null; lastError: string | null; applied: number }
  /** the cloud's clock minus the gate's at the last sync, ms (null before one) */
  clockOffsetMs?: number | null
  /** a backlog drain is down to one batch at a time because decisions' commits were slow, and how often it was */
  drainYielding?: boolean
  drainYields?: number
  /**
   * the store thread (claims and WAL checkpoints off the event loop): running during a backlog drain
   * (or always with outbox.checkpoint worker), off otherwise, failed if it died; how often it started
   */
  storeThread?: { state: 'running' | 'off' | 'failed'; starts: number }
}
