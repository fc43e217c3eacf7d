import type pg from 'pg'
import { AccessEngine } from '../../shared/access/engine.js'
import type { Checkin } from '../../shared/checkin.js'
import { currentPolicy } from '../access/policies.js'

/**
 * Anti-passback violations that slipped through: gates of one zone hear each other's passages over
 * the venue's broker, but while they cannot (a partition, a broker down) two of them can each let
 * the same person in. Once their records reach the cloud, every entry into a zone under an
 * anti-passback rule that follows another entry into that zone with no exit from it in between is
 * an `anti_passback` incident (the earlier entry named as the other record).
 *
 * Records arrive in any order: an exit uploaded late can show that an entry judged a violation was
 * not one. So each batch that holds passages recomputes, for every participant and zone it
 * touches, the whole sequence of passages around it, raises the violations it finds and resolves
 * open incidents that no longer are: the same incidents whatever the order the gates' batches
 * came in, and a resend changes nothing.
 */

/** how far around a batch's passages the sequence is read (a zone's period is at most a day) */
const AROUND_MS = 36 * 3_600_000

/**
 * The passages of these participants through these zones around the batch, any gate, oldest
 * first, with the records that annul one (they name the same zones): an annulled entry never
 * happened. On the partial index of records that name a zone.
 */
const PASSAGES_SQL = `
SELECT a.id::text AS id, a.gate_id AS "gateId", a.participant_id AS "participantId", a.zone_in AS "zoneIn",
       a.zone_out AS "zoneOut", a.rule_id AS "ruleId", (extract(epoch FROM a.ts) * 1000)::float8 AS "tsMs",
       a.annuls::text AS annuls
  FROM attendance_records a
 WHERE a.participant_id = ANY($1::text[]) AND (a.zone_in IS NOT NULL OR a.zone_out IS NOT NULL)
   AND (a.zone_in = ANY($2::text[]) OR a.zone_out = ANY($2::text[]))
   AND (a.decision = 'admit' OR a.annuls IS NOT NULL)
   AND a.ts >= to_timestamp($3 / 1000.0) AND a.ts <= to_timestamp($4 / 1000.0)
 ORDER BY a.ts, a.id`

const RAISE_SQL = `
INSERT INTO incidents (kind, gate_id, participant_id, record_id, record_ts, other_gate_id, other_record_id, detail)
SELECT 'anti_passback', v.gate_id, v.participant_id, v.id, to_timestamp(v.ts_ms / 1000.0), v.other_gate_id, v.other_id,
       jsonb_build_object('zone', v.zone, 'ruleId', v.rule_id, 'gapMs', v.gap_ms)
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::uuid[], $7::text[], $8::text[], $9::float8[])
       AS v(id, gate_id, participant_id, ts_ms, other_gate_id, other_id, zone, rule_id, gap_ms)
ON CONFLICT (kind, record_id) DO NOTHING`

const RESOLVE_SQL = `
UPDATE incidents SET resolved_at = now(), detail = detail || jsonb_build_object('exitFound', true)
 WHERE kind = 'anti_passback' AND resolved_at IS NULL AND record_id = ANY($1::uuid[])`

interface Passage {
  id: string
  gateId: string
  participantId: string
  zoneIn: string | null
  zoneOut: string | null
  ruleId: string | null
  tsMs: number
  /** set on a record that annuls an admit: that admit's id */
  annuls?: string | null
}

/** A violation: `entry` came into `zone` after `previous` did, with no exit between. */
interface Violation {
  entry: Passage
  previous: Passage
  zone: string
}

/**
 * Walk one participant's passages (oldest first) through the zones the policy guards: an entry
 * under an anti-passback rule while the participant is still inside (by an earlier entry of the
 * same period) is a violation. Pure, for the tests.
 */
export function findViolations(passages: readonly Passage[], engine: AccessEngine): Violation[] {
  const guarded = new Set(engine.policy.rules.filter((r) => r.antiPassback).map((r) => r.id))
  const inside = new Map<string, { entry: Passage; period: string }>()
  const found: Violation[] = []
  for (const p of passages) {
    if (p.zoneOut !== null) inside.delete(p.zoneOut)
    if (p.zoneIn === null) continue
    const period = engine.period(p.zoneIn, p.tsMs)
    const before = inside.get(p.zoneIn)
    if (before && before.period === period && p.ruleId !== null && guarded.has(p.ruleId))
      found.push({ entry: p, previous: before.entry, zone: p.zoneIn })
    inside.set(p.zoneIn, { entry: p, period })
  }
  return found
}

/**
 * Raise (or resolve) the anti-passback incidents a stored batch shows, for the event whose policy
 * guards a zone it passed through. Nothing to do, and no query, for a batch without passages.
 */
export async function raisePassbackIncidents(
  pool: pg.Pool,
  eventId: string | null,
  records: readonly Checkin[],
): Promise<number> {
  const passages = records.filter(
    (r) =>
      r.decision === 'admit' &&
      r.participantId !== null &&
      (r.zoneIn !== undefined || r.zoneOut !== undefined),
  )
  if (passages.length === 0 || eventId === null) return 0
  const policy = await currentPolicy(pool, eventId)
  if (policy === null || !policy.rules.some((r) => r.antiPassback)) return 0
  const engine = new AccessEngine(policy)
  const participants = [...new Set(passages.map((p) => p.participantId as string))]
  const zones = [...new Set(passages.flatMap((p) => [p.zoneIn, p.zoneOut].filter((z) => z !== undefined)))]
  const from = Math.min(...passages.map((p) => p.ts)) - AROUND_MS
  const to = Math.max(...passages.map((p) => p.ts)) + AROUND_MS
  const found = (await pool.query<Passage>(PASSAGES_SQL, [participants, zones, from, to])).rows
  const annulled = new Set(found.map((r) => r.annuls).filter((id) => id !== null && id !== undefined))
  const rows = found.filter((r) => (r.annuls === null || r.annuls === undefined) && !annulled.has(r.id))
  const byParticipant = new Map<string, Passage[]>()
  for (const row of rows) {
    const list = byParticipant.get(row.participantId)
    if (list) list.push(row)
    else byParticipant.set(row.participantId, [row])
  }
  const violations = [...byParticipant.values()].flatMap((list) => findViolations(list, engine))
  // entries of these sequences that are not (or no longer) violations: an exit arrived between
  const violating = new Set(violations.map((v) => v.entry.id))
  const cleared = rows.filter((r) => r.zoneIn !== null && !violating.has(r.id)).map((r) => r.id)
  if (cleared.length > 0) await pool.query(RESOLVE_SQL, [cleared])
  if (violations.length > 0)
    await pool.query(RAISE_SQL, [
      violations.map((v) => v.entry.id),
      violations.map((v) => v.entry.gateId),
      violations.map((v) => v.entry.participantId),
      violations.map((v) => v.entry.tsMs),
      violations.map((v) => v.previous.gateId),
      violations.map((v) => v.previous.id),
      violations.map((v) => v.zone),
      violations.map((v) => v.entry.ruleId),
      violations.map((v) => Math.round(v.entry.tsMs - v.previous.tsMs)),
    ])
  return violations.length
}
