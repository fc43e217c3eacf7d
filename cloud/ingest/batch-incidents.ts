import type pg from 'pg'
import type { Checkin } from '../../shared/checkin.js'

/** When a batch raises incidents (from the cloud config). */
export interface IncidentLimits {
  /** a gate clock further off than this is skewed, ms */
  maxSkewMs: number
  /** records that waited longer than this on the gate are a late upload, ms */
  lateUploadMs: number
  /** admits of one participant at two gates within this are a double entry, ms (0: not checked) */
  doubleEntryWindowMs: number
}

/**
 * The admits at other gates that could make a double entry with a batch's admits: one scan of the
 * participant index for all of the batch's participants at once (an index probe each, no sort,
 * no per-row subplan), within the batch's window as constants so that Postgres prunes partitions
 * at plan time. Almost always empty: which of them is nearest to which admit is worked out here.
 */
const DOUBLE_ENTRY_CANDIDATES_SQL = `
SELECT a.participant_id AS "participantId", a.id, a.gate_id AS "gateId", (extract(epoch FROM a.ts) * 1000)::float8 AS "tsMs"
  FROM attendance_records a
 WHERE a.participant_id = ANY($2::text[]) AND a.decision = 'admit' AND a.gate_id <> $1
   AND a.zone_in IS NULL AND a.zone_out IS NULL
   AND a.ts >= to_timestamp($3 / 1000.0) AND a.ts <= to_timestamp($4 / 1000.0)`

/** One double-entry incident per new admit that has one (resent: the incident is unique per record). */
const DOUBLE_ENTRY_SQL = `
INSERT INTO incidents (kind, gate_id, participant_id, record_id, record_ts, other_gate_id, other_record_id, detail)
SELECT 'double_entry', $1, d.participant_id, d.id, to_timestamp(d.ts_ms / 1000.0), d.other_gate_id, d.other_id,
       jsonb_build_object('gapMs', d.gap_ms)
  FROM unnest($2::uuid[], $3::float8[], $4::text[], $5::text[], $6::uuid[], $7::float8[])
       AS d(id, ts_ms, participant_id, other_gate_id, other_id, gap_ms)
ON CONFLICT (kind, record_id) DO NOTHING`

interface AdmitElsewhere {
  participantId: string
  id: string
  gateId: string
  tsMs: number
}

/** Raise a double-entry incident for each admit that has an admit of the same participant at another gate within the window (the nearest). */
async function raiseDoubleEntries(
  pool: pg.Pool,
  gateId: string,
  admits: Checkin[],
  windowMs: number,
): Promise<void> {
  const from = Math.min(...admits.map((a) => a.ts)) - windowMs
  const to = Math.max(...admits.map((a) => a.ts)) + windowMs
  const found = await pool.query<AdmitElsewhere>(DOUBLE_ENTRY_CANDIDATES_SQL, [
    gateId,
    admits.map((a) => a.participantId),
    from,
    to,
  ])
  if (found.rows.length === 0) return
  const elsewhere = new Map<string, AdmitElsewhere[]>()
  for (const row of found.rows) {
    const list = elsewhere.get(row.participantId)
    if (list) list.push(row)
    else elsewhere.set(row.participantId, [row])
  }
  const d = {
    ids: [] as string[],
    ts: [] as number[],
    pids: [] as string[],
    gates: [] as string[],
    others: [] as string[],
    gaps: [] as number[],
  }
  for (const a of admits) {
    let nearest: AdmitElsewhere | null = null
    for (const o of elsewhere.get(a.participantId as string) ?? []) {
      const gap = Math.abs(o.tsMs - a.ts)
      if (gap <= windowMs && (nearest === null || gap < Math.abs(nearest.tsMs - a.ts))) nearest = o
    }
    if (nearest === null) continue
    d.ids.push(a.id)
    d.ts.push(a.ts)
    d.pids.push(a.participantId as string)
    d.gates.push(nearest.gateId)
    d.others.push(nearest.id)
    d.gaps.push(Math.round(Math.abs(nearest.tsMs - a.ts)))
  }
  if (d.ids.length > 0)
    await pool.query(DOUBLE_ENTRY_SQL, [gateId, d.ids, d.ts, d.pids, d.gates, d.others, d.gaps])
}

/**
 * Clock skew and late uploads are a gate's condition: one open incident per gate and kind
 * (incidents_open_per_gate), raised by the first batch that shows it and brought up to date by
 * the next ones: the latest figure, the largest, how many batches showed it, late records counted.
 * `field` is one of two constants, never input.
 */
const gateIncidentSql = (field: 'skewMs' | 'lateMs') => `
INSERT INTO incidents (kind, gate_id, record_id, record_ts, detail)
VALUES ($1, $2, $3, to_timestamp($4 / 1000.0),
        jsonb_build_object('${field}', $5::bigint, 'max_${field}', abs($5::bigint), 'records', $6::bigint, 'batches', 1))
ON CONFLICT (kind, gate_id) WHERE kind IN ('clock_skew', 'late_upload') AND resolved_at IS NULL
DO UPDATE SET detail = incidents.detail || jsonb_build_object(
  '${field}', $5::bigint,
  'max_${field}', greatest(coalesce((incidents.detail->>'max_${field}')::bigint, 0), abs($5::bigint)),
  'records', coalesce((incidents.detail->>'records')::bigint, 0) + $6::bigint,
  'batches', coalesce((incidents.detail->>'batches')::bigint, 1) + 1,
  'lastAt', now())`
const GATE_INCIDENT_SQL = { clock_skew: gateIncidentSql('skewMs'), late_upload: gateIncidentSql('lateMs') }

/** A gate's clock right again: its open clock_skew incident is over (resolved, with the skew that ended it). */
const CLEAR_SKEW_SQL = `
UPDATE incidents SET resolved_at = now(), detail = detail || jsonb_build_object('resolvedSkewMs', $2::bigint)
 WHERE kind = 'clock_skew' AND gate_id = $1 AND resolved_at IS NULL`

/**
 * A gate's clock as a batch shows it: off by more than `maxSkewMs` raises (or brings up to date)
 * its clock_skew incident, within it resolves the open one, so that the next time the clock goes
 * wrong is a new incident and an incident open says the clock is wrong now.
 */
export async function judgeGateClock(
  pool: pg.Pool,
  gateId: string,
  first: Checkin,
  skewMs: number,
  records: number,
  limits: IncidentLimits,
): Promise<void> {
  if (Math.abs(skewMs) > limits.maxSkewMs)
    await raiseGateIncident(pool, 'clock_skew', gateId, first, skewMs, records)
  else await pool.query(CLEAR_SKEW_SQL, [gateId, Math.round(skewMs)])
}

/** Raise a gate's clock_skew or late_upload incident, or bring its open one up to date. */
async function raiseGateIncident(
  pool: pg.Pool,
  kind: 'clock_skew' | 'late_upload',
  gateId: string,
  record: Checkin,
  ms: number,
  records: number,
): Promise<void> {
  try {
    await pool.query(GATE_INCIDENT_SQL[kind], [kind, gateId, record.id, record.ts, Math.round(ms), records])
  } catch (err) {
    // 23505 on (kind, record_id): this record already raised one (since resolved); nothing to add
    if ((err as { code?: string }).code !== '23505') throw err
  }
}

/**
 * The incidents a stored batch shows: double entries across gates, the gate's clock (skewed, or
 * right again), and a late upload. `arrivedBefore` (from the rollups, rollups.ts): the batch's
 * admitted participants who had arrived before it; an admit of anyone else is their first
 * arrival, with no other admit to be a double entry with, and is not looked up (null: look up
 * every admit).
 */
export async function raiseIncidents(
  pool: pg.Pool,
  gateId: string,
  valid: Checkin[],
  sentAt: number,
  skewMs: number,
  limits: IncidentLimits,
  arrivedBefore: ReadonlySet<string> | null = null,
): Promise<void> {
  // checked for every admit of the batch, new or resent: an incident is unique per record, so a
  // resend cannot raise it twice (and a batch stored by an attempt that failed later is checked
  // when it is resent)
  // passages under an access policy are judged by its rules instead (passback.ts): admits at two
  // gates are how people move between the zones of a venue
  const admits = valid.filter(
    (r) =>
      r.decision === 'admit' &&
      r.participantId !== null &&
      r.zoneIn === undefined &&
      r.zoneOut === undefined &&
      (arrivedBefore === null || arrivedBefore.has(r.participantId)),
  )
  if (admits.length > 0 && limits.doubleEntryWindowMs > 0)
    await raiseDoubleEntries(pool, gateId, admits, limits.doubleEntryWindowMs)
  const first = valid[0]
  if (first) await judgeGateClock(pool, gateId, first, skewMs, valid.length, limits)
  // late: how long the records waited on the gate before this upload, on the gate's own clock (a
  // skewed clock is the incident above, not a late upload)
  const oldest = valid.reduce((x, y) => (y.ts < x.ts ? y : x))
  const lateMs = sentAt - oldest.ts
  if (lateMs > limits.lateUploadMs) {
    const late = valid.filter((r) => sentAt - r.ts > limits.lateUploadMs).length
    await raiseGateIncident(pool, 'late_upload', gateId, oldest, lateMs, late)
  }
}
