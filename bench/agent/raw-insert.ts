import path from 'node:path'
import { performance } from 'node:perf_hooks'
import Database from 'better-sqlite3'

/**
 * Baseline: raw better-sqlite3 inserts on the same kind of file (WAL, synchronous=FULL), `rowsPerTxn`
 * rows a transaction for `seconds`: rows/s.
 */
export function rawInsertRate(dir: string, rowsPerTxn: number, seconds: number): number {
  const file = path.join(dir, `raw-${rowsPerTxn}-${Math.random().toString(36).slice(2)}.db`)
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec(`CREATE TABLE checkins (id TEXT PRIMARY KEY, gate_id TEXT NOT NULL, token TEXT NOT NULL, participant_id TEXT,
    method TEXT NOT NULL, decision TEXT NOT NULL, reason TEXT, rssi INTEGER NOT NULL, wall_ms INTEGER NOT NULL,
    mono_ms REAL NOT NULL, boot_id TEXT NOT NULL, boot_seq INTEGER NOT NULL, roster_version INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0)`)
  const ins = db.prepare(
    'INSERT INTO checkins (id, gate_id, token, participant_id, method, decision, reason, rssi, wall_ms, mono_ms, boot_id, boot_seq, roster_version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)',
  )
  let seq = 0
  const batch = db.transaction((n: number) => {
    for (let i = 0; i < n; i++) {
      seq++
      ins.run(
        `0193${seq.toString(16).padStart(28, '0')}`,
        'gate-1',
        (seq * 2654435761).toString(16).slice(0, 8),
        `P-${seq}`,
        'ble',
        'admit',
        null,
        -60,
        Date.now(),
        seq,
        'boot',
        seq,
        1,
      )
    }
  })
  const t0 = performance.now()
  let rows = 0
  while (performance.now() - t0 < seconds * 1000) {
    batch(rowsPerTxn)
    rows += rowsPerTxn
  }
  const rate = rows / ((performance.now() - t0) / 1000)
  db.close()
  return rate
}
