import type { Checkin } from '../../shared/checkin.js'
import type { Db } from './db.js'

/** Everything a technician needs to know about one token: "why would this badge be denied?" */
export interface TokenReport {
  token: string
  roster: {
    participantId: string
    status: string
    name: string | null
    updatedAt: string
    version: number
  } | null
  rosterVersion: number
  lastDecisions: Array<Pick<Checkin, 'id' | 'decision' | 'reason' | 'rssi'> & { at: string }>
  /** what the gate would decide if the badge arrived now */
  wouldBe: { decision: 'admit' | 'deny'; reason: string | null; explanation: string }
  /** live proximity, when the daemon answered */
  present: boolean | null
  smoothedRssi: number | null
}

/** Build the token report from the database (read-only use is fine). */
export function lookupToken(
  db: Db,
  token: string,
  opts: { windowMs: number; now: number; present?: boolean | null; smoothedRssi?: number | null },
): TokenReport {
  const row = db
    .prepare('SELECT participant_id, status, name, updated_at, version FROM roster WHERE token = ?')
    .get(token) as
    | { participant_id: string; status: string; name: string | null; updated_at: number; version: number }
    | undefined
  const versionRow = db.prepare("SELECT value FROM meta WHERE key = 'roster_version'").get() as
    | { value: string }
    | undefined
  const decisions = db
    .prepare(
      'SELECT id, decision, reason, rssi, wall_ms FROM checkins WHERE token = ? ORDER BY seq_no DESC LIMIT 5',
    )
    .all(token) as Array<{
    id: string
    decision: 'admit' | 'deny'
    reason: Checkin['reason']
    rssi: number
    wall_ms: number
  }>
  const lastAdmit = decisions.find((d) => d.decision === 'admit')
  let wouldBe: TokenReport['wouldBe']
  if (!row) {
    wouldBe = {
      decision: 'deny',
      reason: 'unknown',
      explanation:
        "the token is not in this gate's roster (check the badge's token with `gatectl decode`, or import/sync the roster)",
    }
  } else if (row.status !== 'active') {
    wouldBe = {
      decision: 'deny',
      reason: row.status,
      explanation: `the participant's badge is ${row.status} in the roster`,
    }
  } else if (lastAdmit && opts.now - lastAdmit.wall_ms < opts.windowMs) {
    const left = Math.ceil((opts.windowMs - (opts.now - lastAdmit.wall_ms)) / 1000)
    wouldBe = {
      decision: 'deny',
      reason: 'already_checked_in',
      explanation: `admitted at ${new Date(lastAdmit.wall_ms).toISOString()}; a new check-in is possible in ${left} s`,
    }
  } else {
    wouldBe = {
      decision: 'admit',
      reason: null,
      explanation: 'active in the roster and not checked in within the window',
    }
  }
  return {
    token,
    roster: row
      ? {
          participantId: row.participant_id,
          status: row.status,
          name: row.name,
          updatedAt: new Date(row.updated_at).toISOString(),
          version: row.version,
        }
      : null,
    rosterVersion: Number(versionRow?.value ?? 0),
    lastDecisions: decisions.map((decision) => ({
      id: decision.id,
      decision: decision.decision,
      reason: decision.reason,
      rssi: decision.rssi,
      at: new Date(decision.wall_ms).toISOString(),
    })),
    wouldBe,
    present: opts.present ?? null,
    smoothedRssi: opts.smoothedRssi ?? null,
  }
}
