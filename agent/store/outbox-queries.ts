import type { Checkin } from '../../shared/checkin.js'
import type { Db } from './db.js'
import { CheckinState, type CheckinStateName } from './schema.js'

/** Buffer counts for status and metrics. */
export interface OutboxCounts {
  pending: number
  inFlight: number
  synced: number
  /** wall ms of the oldest check-in not yet synced, or null */
  oldestUnsyncedMs: number | null
}

/** A check-in's columns under the names of its wire format (shared/checkin.ts). */
export const CHECKIN_COLUMNS =
  'id, gate_id AS gateId, token, participant_id AS participantId, method, decision, reason, rssi, wall_ms AS ts, ' +
  'mono_ms AS monoMs, boot_id AS bootId, boot_seq AS bootSeq, roster_version AS rosterVersion, ' +
  'zone_in AS zoneIn, zone_out AS zoneOut, rule_id AS ruleId, policy_version AS policyVersion, ' +
  'explanation, actor, note, annuls'

/** Buffer counts from any connection (also a read-only one, when the daemon is down). */
export function outboxCounts(db: Db): OutboxCounts {
  const unsynced = db
    .prepare(
      `SELECT count(*) FILTER (WHERE state = 0) AS pending, count(*) FILTER (WHERE state = 1) AS inFlight,
              min(wall_ms) AS oldest FROM checkins WHERE state < 2`,
    )
    .get() as { pending: number; inFlight: number; oldest: number | null }
  const all = (db.prepare('SELECT count(*) AS count FROM checkins').get() as { count: number }).count
  const synced = all - unsynced.pending - unsynced.inFlight
  return { pending: unsynced.pending, inFlight: unsynced.inFlight, synced, oldestUnsyncedMs: unsynced.oldest }
}

/** A check-in's state as gatectl lists it: its sync state, or refused (synced with the cloud's reason). */
export type ListState = CheckinStateName | 'refused'

/** List buffered check-ins for gatectl, newest first. */
export function listCheckins(
  db: Db,
  filter: { state?: ListState | 'all'; limit?: number; token?: string },
): Array<Checkin & { state: ListState; syncError: string | null }> {
  const where: string[] = []
  const params: unknown[] = []
  if (filter.state === 'refused') where.push('state = 2 AND sync_error IS NOT NULL')
  else if (filter.state === 'synced') where.push('state = 2 AND sync_error IS NULL')
  else if (filter.state && filter.state !== 'all') {
    where.push('state = ?')
    params.push(CheckinState[filter.state])
  }
  if (filter.token) {
    where.push('token = ?')
    params.push(filter.token)
  }
  const sql =
    `SELECT ${CHECKIN_COLUMNS}, state, sync_error AS syncError FROM checkins ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ` +
    'ORDER BY seq_no DESC LIMIT ?'
  params.push(filter.limit ?? -1)
  const names: CheckinStateName[] = ['pending', 'inFlight', 'synced']
  return (db.prepare(sql).all(...params) as Array<Checkin & { state: number; syncError: string | null }>).map(
    (row) => ({
      ...row,
      state: row.syncError ? 'refused' : (names[row.state] ?? 'pending'),
    }),
  )
}
