import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import type { Checkin } from '../../shared/checkin.js'
import { GateError } from '../../shared/errors.js'
import type { SyncResult } from '../../shared/sync.js'
import type { IngestCounters } from './counters.js'
import { checkEvent } from './event-check.js'
import { type RecordIssue, reportRecords } from './record-incidents.js'
import type { RosterIndex } from './roster-index.js'
import { splitRepeats, storeResent } from './unique-ids.js'
import { readBatch } from './validate.js'

/** What the HTTP app knows besides the batch: the gate's event (from its key), the node's roster index, the counters. */
export interface IngestContext {
  eventId: string | null
  roster?: RosterIndex
  counters?: IngestCounters
}

/** The limits a batch is checked against (from the cloud config). */
export interface IngestLimits {
  maxRecordAgeDays: number
  maxFutureMs: number
  maxSkewMs: number
  lateUploadMs: number
  doubleEntryWindowMs: number
  /** COPY first (default); false: INSERT ... ON CONFLICT only */
  ingestCopy?: boolean
}

const COPY_SQL =
  'COPY attendance_records (id, ts, gate_id, participant_id, token, method, decision, reason, rssi, boot_id, boot_seq, mono_ms, roster_version) FROM STDIN'
// the ids once more, unique on their own whatever the time (see unique-ids.ts); first, so that a
// resent batch fails before its records are written
const IDS_COPY_SQL = 'COPY checkin_ids (id) FROM STDIN'

const TOUCH_GATE_SQL = 'UPDATE gates SET last_seen_at = now(), last_skew_ms = $2 WHERE id = $1'

/** A text value in COPY's text format: backslash, tab, newline and carriage return escaped. */
function copyText(v: string): string {
  return /[\\\t\n\r]/.test(v)
    ? v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'))
    : v
}

// a batch's records fall in a few seconds: the date and time up to the second is formatted once
// per second seen (toISOString was a tenth of the service's time on the sync path), the
// milliseconds appended
let isoSecond = Number.NaN
let isoPrefix = ''
const ISO_MAX_MS = 253_402_300_799_999 // 9999-12-31T23:59:59.999Z: later years have another form

/** A timestamp (ms since epoch) as COPY text: the same text as Date.prototype.toISOString. */
function isoTime(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms > ISO_MAX_MS) return new Date(ms).toISOString()
  const ss = Math.floor(ms / 1000)
  if (ss !== isoSecond) {
    isoSecond = ss
    isoPrefix = new Date(ss * 1000).toISOString().slice(0, 19)
  }
  const frac = ms - ss * 1000
  return `${isoPrefix}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`
}

/** One check-in as a line of COPY text (NULL is \N); the gate id is the authenticated one. */
export function copyLine(r: Checkin, gateId: string): string {
  return `${r.id}\t${isoTime(r.ts)}\t${copyText(gateId)}\t${r.participantId === null ? '\\N' : copyText(r.participantId)}\t${copyText(r.token)}\t${r.method}\t${r.decision}\t${r.reason ?? '\\N'}\t${r.rssi}\t${r.bootId}\t${r.bootSeq}\t${r.monoMs}\t${r.rosterVersion}\n`
}

/** What storing a batch did: records stored now (`fresh`: their ids, null for all) or the conflicts that stopped it. */
interface Stored {
  accepted: number
  fresh: Set<string> | null
  conflicts: RecordIssue[]
}

/**
 * Store a batch's valid records (each id once). First with COPY, the bulk path Postgres is fastest
 * at (the records are new unless a batch is resent): the ids into checkin_ids, then the records, in
 * one transaction. An id already stored makes COPY fail on checkin_ids' key, and the batch then
 * goes through storeResent, which stores the new records, counts an identical resend as a
 * duplicate and stops at a conflicting one. Either way a batch is stored whole or not at all, and
 * nothing of it is interpolated into SQL (COPY's data is not SQL).
 */
async function storeRecords(
  pool: pg.Pool,
  gateId: string,
  valid: Checkin[],
  indexes: number[],
  skewMs: number,
  useCopy: boolean,
): Promise<Stored> {
  const client = await pool.connect()
  let release: boolean | Error = false
  try {
    if (useCopy) {
      try {
        // the records and the gate's last-seen in one transaction: stored together or not at all, so
        // a failure after the COPY cannot leave a batch stored that its gate was told failed
        await client.query('BEGIN')
        const ids = client.query(copyFrom(IDS_COPY_SQL))
        await pipeline(Readable.from([valid.map((r) => `${r.id}\n`).join('')]), ids)
        const copy = client.query(copyFrom(COPY_SQL))
        await pipeline(Readable.from([valid.map((r) => copyLine(r, gateId)).join('')]), copy)
        await client.query(TOUCH_GATE_SQL, [gateId, skewMs])
        await client.query('COMMIT')
        return { accepted: copy.rowCount ?? valid.length, fresh: null, conflicts: [] }
      } catch (err) {
        if ((err as { severity?: string }).severity === undefined) throw err
        await client.query('ROLLBACK')
        // 23505: an id is already stored (a resend), which storeResent sorts out; any other
        // refusal (a data error, a timeout) is the answer
        if ((err as { code?: string }).code !== '23505') throw err
      }
    }
    return await storeResent(client, gateId, valid, indexes, skewMs)
  } catch (err) {
    // not Postgres' answer (a lost connection): this client is not reused, the gate retries
    if ((err as { severity?: string }).severity === undefined) release = err as Error
    throw err
  } finally {
    client.release(release)
  }
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
async function judgeGateClock(
  pool: pg.Pool,
  gateId: string,
  first: Checkin,
  skewMs: number,
  records: number,
  limits: IngestLimits,
): Promise<void> {
  if (Math.abs(skewMs) > limits.maxSkewMs)
    await raiseGateIncident(pool, 'clock_skew', gateId, first, skewMs, records)
  else await pool.query(CLEAR_SKEW_SQL, [gateId, Math.round(skewMs)])
}

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
 * Store one gate's batch (the request body): check it (validate.ts), check its records are of the
 * gate's event (event-check.ts), store the valid records in one transaction (storeRecords: a
 * resent record is a duplicate, never an error; an id resent with another time or content is
 * refused, unique-ids.ts), then raise incidents (double entry across gates, clock skew, late
 * upload, unknown participants). A record claiming another gate makes the whole batch forbidden:
 * a gate can only write its own check-ins.
 */
export async function ingestBatch(
  pool: pg.Pool,
  gateId: string,
  body: unknown,
  now: number,
  limits: IngestLimits,
  ctx?: IngestContext,
): Promise<SyncResult> {
  const counters = ctx?.counters
  const batch = readBatch(body)
  if (batch.gateId !== gateId) {
    throw new GateError('E_FORBIDDEN', `this key belongs to gate ${gateId}, not ${batch.gateId}`)
  }
  const records = batch.checked
  if (records === null) {
    const problems = batch.problems
    throw new GateError(
      'E_INPUT',
      `${new Set(problems.map((p) => p.index)).size} record(s) are malformed; nothing was stored`,
      { context: { problems: problems.slice(0, 50) } },
    )
  }
  const foreign = records.find((r) => r.gateId !== gateId)
  if (foreign)
    throw new GateError(
      'E_FORBIDDEN',
      `record ${foreign.id} is for gate ${foreign.gateId}; gate ${gateId} can only write its own check-ins`,
    )

  const oldest = now - limits.maxRecordAgeDays * 86_400_000
  const newest = now + limits.maxFutureMs
  const rejected: SyncResult['rejected'] = []
  const valid: Checkin[] = []
  const indexes: number[] = []
  records.forEach((r, index) => {
    if (r.ts < oldest) rejected.push({ id: r.id, reason: 'ts_too_old' })
    else if (r.ts > newest) rejected.push({ id: r.id, reason: 'ts_in_future' })
    else {
      valid.push(r)
      indexes.push(index)
    }
  })
  const skewMs = batch.sentAt - now
  if (valid.length === 0) {
    // every record refused (a gate clock hours ahead stamps them all in the future): the gate's
    // clock is still judged, the worst skew must not be the one that raises nothing
    const first = records[0]
    if (first) await judgeGateClock(pool, gateId, first, skewMs, records.length, limits)
    return { accepted: 0, duplicates: 0, rejected, stored: [], serverTime: now }
  }

  // refusals are a 400 naming the records (nothing stored): the gate keeps those, marked refused
  // with the reason, and sends the rest again at once (agent/sync/syncer.ts), as for a malformed
  // record. A 200 listing them as rejected would need a reason the gates in the field do not know.
  const unique = splitRepeats(valid, indexes)
  const event = await checkEvent(
    pool,
    gateId,
    unique.records,
    unique.indexes,
    ctx?.roster ? { eventId: ctx.eventId, index: ctx.roster } : undefined,
  )
  await reportRecords(pool, gateId, 'wrong_event', event.wrongEvent, counters?.refused)
  await reportRecords(pool, gateId, 'id_conflict', unique.conflicts, counters?.refused)
  refuse([...event.wrongEvent, ...unique.conflicts])
  const stored = await storeRecords(
    pool,
    gateId,
    unique.records,
    unique.indexes,
    skewMs,
    limits.ingestCopy !== false,
  )
  await reportRecords(pool, gateId, 'id_conflict', stored.conflicts, counters?.refused)
  refuse(stored.conflicts)
  const flagged = event.unknownParticipant.filter((u) => stored.fresh?.has(u.record.id.toLowerCase()) ?? true)
  await reportRecords(pool, gateId, 'unknown_participant', flagged, counters?.flagged)
  await raiseIncidents(pool, gateId, unique.records, batch.sentAt, skewMs, limits)
  return {
    accepted: stored.accepted,
    duplicates: valid.length - stored.accepted,
    rejected,
    stored: valid.map((r) => r.id),
    serverTime: now,
  }
}

/** Refuse the batch (E_INPUT, 400) when records are refused, each named with its index. */
function refuse(issues: readonly RecordIssue[]): void {
  if (issues.length === 0) return
  const problems = [...issues]
    .sort((a, b) => a.index - b.index)
    .map((i) => ({ index: i.index, path: i.field, message: i.message }))
  throw new GateError(
    'E_INPUT',
    `${problems.length} record(s) are refused: ${problems[0]?.message}${problems.length > 1 ? ', ...' : ''}; nothing was stored`,
    { context: { problems } },
  )
}

async function raiseIncidents(
  pool: pg.Pool,
  gateId: string,
  valid: Checkin[],
  sentAt: number,
  skewMs: number,
  limits: IngestLimits,
): Promise<void> {
  // checked for every admit of the batch, new or resent: an incident is unique per record, so a
  // resend cannot raise it twice (and a batch stored by an attempt that failed later is checked
  // when it is resent)
  const admits = valid.filter((r) => r.decision === 'admit' && r.participantId !== null)
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
