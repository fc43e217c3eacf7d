/**
 * The ingest benchmark's baselines, on the same schema and the same kind of rows: a plain COPY (the
 * practical ceiling) and one INSERT per record (the naive path).
 */
import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { COPY_SQL, copyLine } from '../../cloud/ingest/ingest.js'
import type { Checkin } from '../../shared/checkin.js'
import type { Checkins } from './workload.js'

/** Rows a second each way, and how many rows each wrote. */
export interface Baselines {
  copyRate: number
  copied: number
  insertRate: number
  inserted: number
}

/** Both baselines, their rows made by `checkins` (so they count in its numbering). */
export async function baselines(sql: pg.Client, checkins: Checkins): Promise<Baselines> {
  const n = 200_000
  const rows = Array.from({ length: n }, () => checkins.next('bench-copy', Date.now()))
  // the same lines the service's bulk path sends
  const line = (r: Checkin) => copyLine(r, r.gateId)
  const c0 = performance.now()
  const copy = sql.query(copyFrom(COPY_SQL))
  await pipeline(
    Readable.from(
      (function* () {
        for (let i = 0; i < rows.length; i += 1000)
          yield rows
            .slice(i, i + 1000)
            .map(line)
            .join('')
      })(),
    ),
    copy,
  )
  const copyRate = n / ((performance.now() - c0) / 1000)
  const single = Array.from({ length: 20_000 }, () => checkins.next('bench-insert', Date.now()))
  const i0 = performance.now()
  let inserted = 0
  for (const r of single) {
    if (performance.now() - i0 > 10_000) break
    await sql.query(
      `INSERT INTO attendance_records (id, ts, gate_id, participant_id, token, method, decision, reason, rssi, boot_id, boot_seq, mono_ms, roster_version)
       VALUES ($1, to_timestamp($2 / 1000.0), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING`,
      [
        r.id,
        r.ts,
        r.gateId,
        r.participantId,
        r.token,
        r.method,
        r.decision,
        r.reason,
        r.rssi,
        r.bootId,
        r.bootSeq,
        r.monoMs,
        r.rosterVersion,
      ],
    )
    inserted++
  }
  const insertRate = inserted / ((performance.now() - i0) / 1000)
  return { copyRate, copied: n, insertRate, inserted }
}
