import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import { to as copyTo } from 'pg-copy-streams'

/** The columns of an attendance export, in order (the CSV's header row). */
export const EXPORT_COLUMNS = [
  'ts',
  'gate_id',
  'participant_id',
  'name',
  'decision',
  'reason',
  'method',
  'zone_in',
  'zone_out',
  'rule_id',
  'explanation',
  'actor',
  'note',
  'annuls',
  'id',
] as const

// COPY takes no parameters: the event is handed over in a setting of this transaction, so nothing
// of the request is ever part of the SQL text
/** The columns after `ts`, and where they come from: shared by the CSV and the Parquet exports. */
export const EXPORT_REST_AND_FROM = `a.gate_id, a.participant_id, p.name, a.decision, a.reason, a.method, a.zone_in,
         a.zone_out, a.rule_id, a.explanation, a.actor, a.note, a.annuls, a.id
    FROM attendance_records a
    JOIN gates g ON g.id = a.gate_id
    LEFT JOIN participants p ON p.id = a.participant_id
   WHERE g.event_id = current_setting('gate.export_event')`

const EXPORT_SQL = `COPY (SELECT a.ts, ${EXPORT_REST_AND_FROM}) TO STDOUT WITH (FORMAT csv, HEADER)`

/**
 * Stream an event's check-ins as CSV into `out` (a file, an HTTP response): Postgres' COPY TO
 * writes the rows as it reads them, so no result is ever held whole, whatever its size. Rows come
 * in storage order (partition by partition: by day or month, roughly by time). One read-only
 * transaction on a client of its own; an `out` that closes early (a download cancelled) ends it.
 * Returns the bytes written.
 */
export function exportAttendanceCsv(pool: pg.Pool, eventId: string, out: Writable): Promise<number> {
  return copyEventOut(pool, eventId, EXPORT_SQL, (copy) => pipeline(copy, out))
}

/**
 * Run one of the exports' COPY TO statements (`sql`, reading the event from gate.export_event) in a
 * read-only transaction on a client of its own, handing its stream to `consume`. A consumer that
 * fails (a download cancelled) leaves the connection mid-COPY: it is not reused. Returns the bytes
 * Postgres sent.
 */
export async function copyEventOut(
  pool: pg.Pool,
  eventId: string,
  sql: string,
  consume: (copy: Readable) => Promise<void>,
): Promise<number> {
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    await client.query('BEGIN READ ONLY')
    await client.query("SELECT set_config('gate.export_event', $1, true)", [eventId])
    const copy = client.query(copyTo(sql))
    let bytes = 0
    copy.on('data', (chunk: Buffer) => {
      bytes += chunk.length
    })
    try {
      await consume(copy)
    } catch (err) {
      broken = err as Error
      throw err
    }
    await client.query('COMMIT')
    return bytes
  } finally {
    client.release(broken ?? false)
  }
}
