import { randomUUID } from 'node:crypto'
import type pg from 'pg'
import type { Counter } from 'prom-client'
import type { Checkin } from '../../shared/checkin.js'

/** What a record can be refused or flagged for: one open incident per gate and kind. */
export type RecordIncidentKind = 'wrong_event' | 'unknown_participant' | 'id_conflict'

/** One record of a batch that is refused or flagged, and why. */
export interface RecordIssue {
  /** its index in the batch as sent (the gate finds it by this in a 400's details) */
  index: number
  record: Checkin
  /** the field at fault (the gate shows it before the message) */
  field: 'id' | 'participantId' | 'token'
  /** what the gate is told: never anything of another event */
  message: string
  /** what ops see in the incident besides the record (may name the other event) */
  detail: Record<string, unknown>
  /** another gate involved (the gate that stored the id first) */
  otherGateId?: string | null
}

/**
 * One open incident per gate and kind (incidents_open_per_gate_records), like clock skew: raised
 * by the first batch that shows it, then counted up (records, batches) with the latest record as
 * the example. One row per record would let a misbehaving gate fill the table.
 */
const RECORD_INCIDENT_SQL = `
INSERT INTO incidents (kind, gate_id, participant_id, record_id, record_ts, other_gate_id, other_record_id, detail)
VALUES ($1, $2, $3, $4, to_timestamp($5 / 1000.0), $6, $7,
        $8::jsonb || jsonb_build_object('records', $9::bigint, 'batches', 1))
ON CONFLICT (kind, gate_id) WHERE kind IN ('wrong_event', 'unknown_participant', 'id_conflict') AND resolved_at IS NULL
DO UPDATE SET detail = incidents.detail || $8::jsonb || jsonb_build_object(
  'records', coalesce((incidents.detail->>'records')::bigint, 0) + $9::bigint,
  'batches', coalesce((incidents.detail->>'batches')::bigint, 0) + 1,
  'lastAt', now())`

/** Count a batch's refused or flagged records and bring the gate's open incident of that kind up to date. */
export async function reportRecords(
  pool: pg.Pool,
  gateId: string,
  kind: RecordIncidentKind,
  issues: readonly RecordIssue[],
  counter: Counter<'reason'> | undefined,
): Promise<void> {
  const last = issues[issues.length - 1]
  if (!last) return
  counter?.inc({ reason: kind }, issues.length)
  const r = last.record
  const detail = JSON.stringify({
    last: {
      recordId: r.id,
      ts: r.ts,
      participantId: r.participantId,
      token: r.token,
      decision: r.decision,
      message: last.message,
      ...last.detail,
    },
  })
  // incidents are unique per kind and record id (incidents_kind_record_id_key, for the per-record
  // double entries): a record that raised one already (since resolved; or the id another gate
  // raised an id_conflict for) cannot raise another, so the next record of the batch does, and
  // failing those an id of the incident's own (the record is named in the detail)
  const candidates = issues.slice(0, 5).map((issue) => ({ recordId: issue.record.id, issue }))
  candidates.push({ recordId: randomUUID(), issue: last })
  for (const { recordId, issue } of candidates) {
    try {
      await pool.query(RECORD_INCIDENT_SQL, [
        kind,
        gateId,
        issue.record.participantId,
        recordId,
        issue.record.ts,
        issue.otherGateId ?? null,
        kind === 'id_conflict' ? issue.record.id : null,
        detail,
        issues.length,
      ])
      return
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw err
    }
  }
}
