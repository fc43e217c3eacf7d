import type pg from 'pg'
import type { Checkin } from '../../shared/checkin.js'
import { rollUp } from '../attendance/rollups.js'
import type { RecordIssue } from './record-incidents.js'

/**
 * A check-in id is stored once, whatever its time (checkin_ids, unique on the id alone; the
 * partitioned table's key is (id, ts)). A gate resends records after a crash or a lost answer:
 * the same id with the same content is a duplicate, as ever. The same id with another time or
 * other content only comes from a misbehaving gate (or one copying another gate's ids): it is
 * refused, and the record stored first stays.
 */

// the fields a record is stored with, in the order of the comparison below; ids lower case, as
// Postgres writes a uuid
const same = (a: Checkin, b: Checkin): boolean =>
  a.ts === b.ts &&
  a.gateId === b.gateId &&
  a.participantId === b.participantId &&
  a.token === b.token &&
  a.method === b.method &&
  a.decision === b.decision &&
  a.reason === b.reason &&
  a.rssi === b.rssi &&
  a.bootId.toLowerCase() === b.bootId.toLowerCase() &&
  a.bootSeq === b.bootSeq &&
  a.monoMs === b.monoMs &&
  a.rosterVersion === b.rosterVersion

/** A batch with each id once, and what its repeats were. */
export interface Repeats {
  records: Checkin[]
  /** each record's index in the batch as sent */
  indexes: number[]
  /** repeats identical to the first of their id (duplicates) */
  identical: number
  /** repeats with another time or content: refused */
  conflicts: RecordIssue[]
}

/** Keep the first record of each id in a batch (`indexes`: places in the batch as sent). */
export function splitRepeats(records: Checkin[], indexes: number[]): Repeats {
  const first = new Map<string, Checkin>()
  for (const r of records) {
    const id = r.id.toLowerCase()
    if (!first.has(id)) first.set(id, r)
  }
  if (first.size === records.length) return { records, indexes, identical: 0, conflicts: [] }
  const out: Repeats = { records: [], indexes: [], identical: 0, conflicts: [] }
  records.forEach((r, k) => {
    const kept = first.get(r.id.toLowerCase()) as Checkin
    const index = indexes[k] as number
    if (kept === r) {
      out.records.push(r)
      out.indexes.push(index)
    } else if (same(kept, r)) out.identical++
    else
      out.conflicts.push({
        index,
        record: r,
        field: 'id',
        message: `check-in id ${r.id} is twice in this batch with another time or content`,
        detail: { firstTs: kept.ts },
      })
  })
  return out
}

const INPUT = `
input AS (
  SELECT * FROM json_to_recordset($1::json) AS t(
    "id" uuid, "ts" float8, "participantId" text, "token" text, "method" text, "decision" text, "reason" text,
    "rssi" smallint, "bootId" uuid, "bootSeq" bigint, "monoMs" float8, "rosterVersion" bigint,
    "zoneIn" text, "zoneOut" text, "ruleId" text, "policyVersion" integer, "explanation" text, "actor" text,
    "note" text, "annuls" uuid)
)`

// the records whose id is new, in one statement: the id first (a concurrent upload of the same id
// makes this wait for its commit, then skip it), then the record; nothing of it interpolated into
// SQL. ON CONFLICT on the record too: a row written around the ingest (plain SQL) is not an error.
const INSERT_NEW_SQL = `
WITH ${INPUT},
fresh AS (INSERT INTO checkin_ids (id) SELECT id FROM input ON CONFLICT DO NOTHING RETURNING id)
INSERT INTO attendance_records (id, ts, gate_id, participant_id, token, method, decision, reason, rssi,
                                boot_id, boot_seq, mono_ms, roster_version, zone_in, zone_out, rule_id,
                                policy_version, explanation, actor, note, annuls)
SELECT i.id, to_timestamp(i.ts / 1000.0), $2, i."participantId", i.token, i.method, i.decision, i.reason, i.rssi,
       i."bootId", i."bootSeq", i."monoMs", i."rosterVersion", i."zoneIn", i."zoneOut", i."ruleId",
       i."policyVersion", i.explanation, i.actor, i.note, i.annuls
  FROM input i JOIN fresh f ON f.id = i.id
ON CONFLICT (id, ts) DO NOTHING
RETURNING id::text AS id`

// the rest against what is stored under their ids, in every partition (an id's time is not
// known): a rare path, taken by resent batches
const COMPARE_SQL = `
WITH ${INPUT}
SELECT i.id::text AS id, s.present, s.same, s."storedTs", s."storedGate"
  FROM input i
 CROSS JOIN LATERAL (
   SELECT count(*) > 0 AS present,
          coalesce(bool_or(a.ts = to_timestamp(i.ts / 1000.0) AND
            (a.gate_id, a.participant_id, a.token, a.method, a.decision, a.reason, a.rssi, a.boot_id, a.boot_seq,
             a.mono_ms, a.roster_version)
            IS NOT DISTINCT FROM
            ($2::text, i."participantId", i.token, i.method, i.decision, i.reason, i.rssi, i."bootId", i."bootSeq",
             i."monoMs", i."rosterVersion")), false) AS same,
          (extract(epoch FROM min(a.ts)) * 1000)::float8 AS "storedTs",
          min(a.gate_id) AS "storedGate"
     FROM attendance_records a WHERE a.id = i.id
 ) s`

const TOUCH_GATE_SQL = 'UPDATE gates SET last_seen_at = now(), last_skew_ms = $2 WHERE id = $1'

/** What storing a resent batch did. */
export interface ResendStored {
  /** records stored now */
  accepted: number
  /** their ids, lower case */
  fresh: Set<string>
  /** records whose id is stored with another time or content: nothing was stored */
  conflicts: RecordIssue[]
}

/**
 * Store a batch that holds ids already stored (or every batch when COPY is off), in one
 * transaction on `client`: the new records go in, an identical resend is a duplicate, and a
 * conflicting one makes the whole batch roll back (the gate is told which record; it keeps that one
 * and sends the rest again).
 */
export async function storeResent(
  client: pg.PoolClient,
  gateId: string,
  eventId: string | null,
  records: readonly Checkin[],
  indexes: readonly number[],
  skewMs: number,
): Promise<ResendStored> {
  await client.query('BEGIN')
  try {
    const ins = await client.query<{ id: string }>(INSERT_NEW_SQL, [JSON.stringify(records), gateId])
    await client.query(TOUCH_GATE_SQL, [gateId, skewMs])
    const fresh = new Set(ins.rows.map((r) => r.id))
    const rest: number[] = []
    records.forEach((r, k) => {
      if (!fresh.has(r.id.toLowerCase())) rest.push(k)
    })
    const conflicts: RecordIssue[] = []
    if (rest.length > 0) {
      const cmp = await client.query<{
        id: string
        present: boolean
        same: boolean
        storedTs: number | null
        storedGate: string | null
      }>(COMPARE_SQL, [JSON.stringify(rest.map((k) => records[k])), gateId])
      const byId = new Map(cmp.rows.map((c) => [c.id, c]))
      for (const k of rest) {
        const record = records[k] as Checkin
        const c = byId.get(record.id.toLowerCase())
        // (not present: stored once and dropped since by the retention, a duplicate all the same)
        if (!c?.present || c.same) continue
        conflicts.push({
          index: indexes[k] as number,
          record,
          field: 'id',
          message: `check-in id ${record.id} is already stored with another time or content`,
          detail: { storedTs: c.storedTs, storedGate: c.storedGate },
          otherGateId: c.storedGate !== gateId ? c.storedGate : null,
        })
      }
    }
    if (conflicts.length > 0) await client.query('ROLLBACK')
    else {
      // the event's figures count what this transaction stored, nothing resent
      await rollUp(
        client,
        eventId,
        gateId,
        records.filter((r) => fresh.has(r.id.toLowerCase())),
      )
      await client.query('COMMIT')
    }
    return { accepted: conflicts.length > 0 ? 0 : ins.rows.length, fresh, conflicts }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}
