/**
 * The ingest benchmark's workload: check-ins as gates make them, the gates' gzipped batches, the
 * roster that admits them, and a gate's backlog buffered in its SQLite file.
 */
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { v7 as uuidv7 } from 'uuid'
import { openDatabase } from '../../agent/store/db.js'
import type { Checkin } from '../../shared/checkin.js'

/** participant P-n's badge (a 32-bit multiplicative hash: distinct for every n) */
const tokenOf = (n: number) => (Math.imul(n, 2654435761) >>> 0).toString(16).padStart(8, '0')

/** The event of the benchmark's gates and roster: its figures are kept as the records are stored. */
export const BENCH_EVENT = 'bench-event'

/** the same in SQL, for the roster the cloud checks every record against (P-from .. P-to) */
export const ROSTER_SQL = `INSERT INTO participants (id, event_id, token, status)
  SELECT 'P-' || n, '${BENCH_EVENT}', lpad(to_hex((n * 2654435761) % 4294967296), 8, '0'), 'active' FROM generate_series($1::bigint, $2::bigint) n`

/**
 * The check-ins of one run, numbered in the order they are made (participant P-n's is the n-th): the
 * roster covers P-1 up to `made`, so every phase's records are made through the one instance.
 */
export class Checkins {
  /** the boot every record is from */
  readonly bootId = uuidv7()
  private seq = 0

  /** how many have been made */
  get made(): number {
    return this.seq
  }

  /** The next check-in at `gateId`, made at `now`. */
  next(gateId: string, now: number): Checkin {
    const n = ++this.seq
    // a venue admits each participant about once; one admit in 1,000 is the same participant (and
    // badge) seen a moment ago at another gate (1,500 records back: the previous batch): the double
    // entries the cloud must flag
    const p = n % 1000 === 1 && n > 2000 ? n - 1500 : n
    return {
      id: uuidv7(),
      gateId,
      token: tokenOf(n % 20 === 0 ? n : p),
      participantId: n % 20 === 0 ? null : `P-${p}`,
      method: 'ble',
      decision: n % 20 === 0 ? 'deny' : 'admit',
      reason: n % 20 === 0 ? 'unknown' : null,
      rssi: -50 - (n % 30),
      ts: now - (n % 600_000),
      monoMs: n,
      bootId: this.bootId,
      bootSeq: n,
      rosterVersion: 1,
    }
  }
}

/**
 * Each gate's upload bodies (gzipped JSON, as the agent sends them), `perGate` batches of `batch`
 * for gates bench-0 .. bench-(gates-1).
 */
export function gzippedBatches(
  checkins: Checkins,
  gates: number,
  perGate: number,
  batch: number,
): Buffer[][] {
  // built gate after gate, batch by batch, so that a repeated participant was admitted at another gate
  const bodies: Buffer[][] = Array.from({ length: gates }, () => [])
  for (let b = 0; b < perGate; b++) {
    for (let g = 0; g < gates; g++) {
      const gateId = `bench-${g}`
      const now = Date.now()
      const records = Array.from({ length: batch }, () => checkins.next(gateId, now))
      bodies[g]?.push(gzipSync(JSON.stringify({ gateId, sentAt: now, records })))
    }
  }
  return bodies
}

/**
 * A gate's agent.db in `dataDir` with `count` check-ins buffered and not yet synced, spread over the
 * last day (a day offline), ending now.
 */
export function bufferBacklog(checkins: Checkins, dataDir: string, gateId: string, count: number): void {
  mkdirSync(dataDir, { recursive: true })
  const adb = openDatabase(path.join(dataDir, 'agent.db'))
  const ins = adb.prepare(
    `INSERT INTO checkins (id, gate_id, token, participant_id, method, decision, reason, rssi, wall_ms, mono_ms, boot_id, boot_seq, roster_version)
         VALUES (?, ?, ?, ?, 'ble', ?, ?, ?, ?, ?, ?, ?, 1)`,
  )
  const now = Date.now()
  adb.transaction(() => {
    for (let i = 0; i < count; i++) {
      const r = checkins.next(gateId, now)
      ins.run(
        r.id,
        gateId,
        r.token,
        r.participantId,
        r.decision,
        r.reason,
        r.rssi,
        Math.floor(now - 86_400_000 + i * (86_400_000 / count)),
        i,
        checkins.bootId,
        i + 1,
      )
    }
  })()
  adb.close()
}
