import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import type { Checkin } from '../../shared/checkin.js'
import { GateError } from '../../shared/errors.js'
import type { SyncResult } from '../../shared/sync.js'
import { rollUp } from '../attendance/rollups.js'
import { type IncidentLimits, judgeGateClock, raiseIncidents } from './batch-incidents.js'
import type { IngestCounters } from './counters.js'
import { checkEvent } from './event-check.js'
import { raisePassbackIncidents } from './passback.js'
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
export interface IngestLimits extends IncidentLimits {
  maxRecordAgeDays: number
  maxFutureMs: number
  /** COPY first (default); false: INSERT ... ON CONFLICT only */
  ingestCopy?: boolean
}

/** The COPY the ingest stores records with (the benchmark's baseline uses the same). */
export const COPY_SQL =
  'COPY attendance_records (id, ts, gate_id, participant_id, token, method, decision, reason, rssi, boot_id, boot_seq, mono_ms, roster_version, ' +
  'zone_in, zone_out, rule_id, policy_version, explanation, actor, note, annuls) FROM STDIN'
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

/** the optional fields of a record without any (most of them): all NULL */
const NO_DETAILS = '\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N'

/** An optional text as COPY text (NULL is \N). */
const optText = (v: string | undefined) => (v === undefined ? '\\N' : copyText(v))

/** The optional fields of a record (shared/checkin.ts: access policy, by hand, annulment). */
function copyDetails(r: Checkin): string {
  if (
    r.zoneIn === undefined &&
    r.zoneOut === undefined &&
    r.ruleId === undefined &&
    r.policyVersion === undefined &&
    r.explanation === undefined &&
    r.actor === undefined &&
    r.annuls === undefined
  )
    return NO_DETAILS
  return `\t${optText(r.zoneIn)}\t${optText(r.zoneOut)}\t${optText(r.ruleId)}\t${r.policyVersion ?? '\\N'}\t${optText(r.explanation)}\t${optText(r.actor)}\t${optText(r.note)}\t${r.annuls ?? '\\N'}`
}

/** One check-in as a line of COPY text (NULL is \N); the gate id is the authenticated one. */
export function copyLine(r: Checkin, gateId: string): string {
  return `${r.id}\t${isoTime(r.ts)}\t${copyText(gateId)}\t${r.participantId === null ? '\\N' : copyText(r.participantId)}\t${copyText(r.token)}\t${r.method}\t${r.decision}\t${r.reason ?? '\\N'}\t${r.rssi}\t${r.bootId}\t${r.bootSeq}\t${r.monoMs}\t${r.rosterVersion}${copyDetails(r)}\n`
}

/** What storing a batch did: records stored now (`fresh`: their ids, null for all) or the conflicts that stopped it. */
interface Stored {
  accepted: number
  fresh: Set<string> | null
  conflicts: RecordIssue[]
  /** the batch's admitted participants who had arrived before it (null: not known, check all) */
  arrivedBefore: Set<string> | null
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
  eventId: string | null,
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
        const arrivedBefore = await rollUp(client, eventId, gateId, valid)
        await client.query('COMMIT')
        return { accepted: copy.rowCount ?? valid.length, fresh: null, conflicts: [], arrivedBefore }
      } catch (err) {
        if ((err as { severity?: string }).severity === undefined) throw err
        await client.query('ROLLBACK')
        // 23505: an id is already stored (a resend), which storeResent sorts out; any other
        // refusal (a data error, a timeout) is the answer
        if ((err as { code?: string }).code !== '23505') throw err
      }
    }
    return { ...(await storeResent(client, gateId, eventId, valid, indexes, skewMs)), arrivedBefore: null }
  } catch (err) {
    // not Postgres' answer (a lost connection): this client is not reused, the gate retries
    if ((err as { severity?: string }).severity === undefined) release = err as Error
    throw err
  } finally {
    client.release(release)
  }
}

/**
 * Store one gate's batch (the request body): check it (validate.ts), check its records are of the
 * gate's event (event-check.ts), store the valid records in one transaction (storeRecords: a
 * resent record is a duplicate, never an error; an id resent with another time or content is
 * refused, unique-ids.ts), then raise incidents (double entry across gates, clock skew, late
 * upload: batch-incidents.ts; unknown participants; anti-passback violations that slipped through a
 * partition: passback.ts). A record claiming another gate makes the
 * whole batch forbidden: a gate can only write its own check-ins.
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
    ctx?.eventId ?? null,
    unique.records,
    unique.indexes,
    skewMs,
    limits.ingestCopy !== false,
  )
  await reportRecords(pool, gateId, 'id_conflict', stored.conflicts, counters?.refused)
  refuse(stored.conflicts)
  const flagged = event.unknownParticipant.filter((u) => stored.fresh?.has(u.record.id.toLowerCase()) ?? true)
  await reportRecords(pool, gateId, 'unknown_participant', flagged, counters?.flagged)
  await raiseIncidents(pool, gateId, unique.records, batch.sentAt, skewMs, limits, stored.arrivedBefore)
  await raisePassbackIncidents(pool, ctx?.eventId ?? null, unique.records)
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
