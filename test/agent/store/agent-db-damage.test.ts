import { createHash } from 'node:crypto'
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import path from 'node:path'
import { pino } from 'pino'
import { v7 as uuidv7 } from 'uuid'
import { describe, expect, it } from 'vitest'
import { systemClock } from '../../../agent/clock.js'
import { openDatabase } from '../../../agent/store/db.js'
import { makeDataDir, openAgentDatabase } from '../../../agent/store/open-agent-db.js'
import { RosterStore } from '../../../agent/store/roster-store.js'
import { isGateError } from '../../../shared/errors.js'
import { tempDir } from '../../support/helpers.js'
import {
  eventually,
  gatectl,
  runAgentToExit,
  spawnAgent,
  waitForAgent,
} from '../../support/process-helpers.js'

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex')

/**
 * A valid agent.db with a roster and 20,050 check-ins, the last 50 still in its WAL (as after a
 * crash), copied into `dir`; then a few pages of the check-ins table, in the middle of the file,
 * overwritten with noise (what a failing SD card does).
 */
function damagedDatabase(work: string, dir: string): void {
  mkdirSync(work, { recursive: true })
  const file = path.join(work, 'agent.db')
  const db = openDatabase(file)
  new RosterStore(db, systemClock).importEntries(
    Array.from({ length: 3000 }, (_, i) => ({
      token: i.toString(16).padStart(8, '0'),
      participantId: `P${i}`,
      status: 'active' as const,
    })),
  )
  const insert = db.prepare(
    `INSERT INTO checkins (id, gate_id, token, participant_id, method, decision, reason, rssi, wall_ms, mono_ms,
       boot_id, boot_seq, roster_version, state) VALUES (?, 'g1', ?, ?, 'ble', 'admit', NULL, -60, ?, ?, 'b1', ?, 1, ?)`,
  )
  const rows = (from: number, n: number, token?: string) =>
    db.transaction(() => {
      for (let i = from; i < from + n; i++) {
        const t = token ?? (i % 3000).toString(16).padStart(8, '0')
        insert.run(uuidv7(), t, `P${i % 3000}`, 1_700_000_000_000 + i, i, i, i < 19_000 ? 2 : 0)
      }
    })()
  rows(0, 20_000)
  db.pragma('wal_checkpoint(TRUNCATE)')
  // the next commits stay in the WAL: the agent must leave it as it is too
  db.pragma('wal_autocheckpoint = 0')
  rows(20_000, 50, '0000abcd')
  const leaves = (
    db
      .prepare("SELECT pageno FROM dbstat WHERE name = 'checkins' AND pagetype = 'leaf' ORDER BY pageno")
      .all() as Array<{
      pageno: number
    }>
  ).map((r) => r.pageno)
  mkdirSync(dir, { recursive: true })
  copyFileSync(file, path.join(dir, 'agent.db'))
  copyFileSync(`${file}-wal`, path.join(dir, 'agent.db-wal'))
  db.close()
  const fd = openSync(path.join(dir, 'agent.db'), 'r+')
  try {
    const middle = Math.floor(leaves.length / 2)
    for (const page of [leaves[middle - 40]!, leaves[middle]!, leaves[middle + 1]!]) {
      const noise = Buffer.alloc(4096)
      for (let i = 0; i < noise.length; i++) noise[i] = (i * 131 + page * 7) & 0xff
      writeSync(fd, noise, 0, noise.length, (page - 1) * 4096)
    }
  } finally {
    closeSync(fd)
  }
}

describe('a damaged agent.db: refused before any write, with what to do', () => {
  it('pages overwritten in the middle: exit 4 at every start, the message says what to do, agent.db and its WAL untouched', async () => {
    const tmp = tempDir()
    try {
      const dir = path.join(tmp.dir, 'data')
      damagedDatabase(path.join(tmp.dir, 'work'), dir)
      const db = path.join(dir, 'agent.db')
      const wal = `${db}-wal`
      expect(statSync(wal).size).toBeGreaterThan(0)
      const before = { db: sha256(db), wal: sha256(wal) }
      // twice, as Restart=always would: nothing may be written at either start
      for (let start = 0; start < 2; start++) {
        const r = await runAgentToExit(['run', '--data-dir', dir, '--source', 'sim'])
        expect(r.code, r.stderr).toBe(4)
        expect(r.stderr).toMatch(/agent\.db is corrupted/)
        expect(r.stderr).toMatch(/left untouched/)
        expect(r.stderr).toMatch(/systemctl stop gate-agent/)
        expect(r.stderr).toMatch(/mv .*agent\.db\* .*damaged/)
        expect(r.stderr).toMatch(/gatectl --data-dir .*damaged checkins/)
        expect(r.stderr).not.toMatch(/^\s+at /m)
        expect({ db: sha256(db), wal: sha256(wal) }).toEqual(before)
      }
      // gatectl: a damaged page met while reading is the same clear error, and nothing is imported into it
      const exp = await gatectl(['--data-dir', dir, 'checkins', 'export'])
      expect(exp.code, exp.stderr).toBe(4)
      expect(exp.stderr).toMatch(/agent\.db is corrupted/)
      const roster = path.join(tmp.dir, 'roster.csv')
      writeFileSync(roster, 'token,participant_id,status\nbeef0001,P-new,active\n')
      const imp = await gatectl(['--data-dir', dir, 'roster', 'import', roster])
      expect(imp.code, imp.stderr).toBe(4)
      expect(imp.stderr).toMatch(/agent\.db is corrupted/)
      expect({ db: sha256(db), wal: sha256(wal) }).toEqual(before)
    } finally {
      tmp.cleanup()
    }
  }, 90_000)

  it('a 0-byte agent.db is refused (exit 4, how to start afresh); deleted, the agent starts with a new one', async () => {
    const tmp = tempDir()
    try {
      const db = path.join(tmp.dir, 'agent.db')
      writeFileSync(db, '')
      for (let start = 0; start < 2; start++) {
        const r = await runAgentToExit(['run', '--data-dir', tmp.dir, '--source', 'sim'])
        expect(r.code, r.stderr).toBe(4)
        expect(r.stderr).toMatch(/agent\.db is empty \(0 bytes\)/)
        expect(r.stderr).toMatch(/delete it \(rm -f .*agent\.db/)
        expect(statSync(db).size).toBe(0)
        expect(readdirSync(tmp.dir)).toEqual(['agent.db'])
      }
      // a WAL left without its database is the same loss: SQLite would play it into a new file
      const wal = path.join(tmp.dir, 'agent.db-wal')
      writeFileSync(wal, Buffer.alloc(8192, 1))
      rmSync(db)
      const r = await runAgentToExit(['run', '--data-dir', tmp.dir, '--source', 'sim'])
      expect(r.code, r.stderr).toBe(4)
      expect(r.stderr).toMatch(/agent\.db is missing but its write-ahead log/)
      expect(existsSync(db)).toBe(false)
      // deliberately afresh, as the message says
      rmSync(wal)
      const agent = spawnAgent(tmp.dir, ['--source', 'sim'])
      await waitForAgent(agent)
      agent.child.kill('SIGTERM')
      expect(await agent.exited).toBe(0)
      expect(statSync(db).size).toBeGreaterThan(0)
    } finally {
      tmp.cleanup()
    }
  }, 90_000)

  it('a brand-new data directory, several levels deep, still starts afresh', async () => {
    const tmp = tempDir()
    try {
      const dir = path.join(tmp.dir, 'var', 'lib', 'gate-agent')
      const agent = spawnAgent(dir, ['--source', 'sim'])
      await waitForAgent(agent)
      agent.child.kill('SIGTERM')
      expect(await agent.exited).toBe(0)
      expect(statSync(path.join(dir, 'agent.db')).size).toBeGreaterThan(0)
      expect(existsSync(path.join(dir, 'agent.db.new'))).toBe(false)
    } finally {
      tmp.cleanup()
    }
  }, 60_000)

  it('a directory where agent.db or the replay file should be: exit 4 and exit 2 with what it is, no EISDIR', async () => {
    const tmp = tempDir()
    try {
      const a = path.join(tmp.dir, 'a')
      mkdirSync(path.join(a, 'agent.db'), { recursive: true })
      const r = await runAgentToExit(['run', '--data-dir', a, '--source', 'sim'])
      expect(r.code, r.stderr).toBe(4)
      expect(r.stderr).toMatch(/agent\.db is a directory, not the agent's database file/)
      expect(r.stderr).not.toMatch(/EISDIR/)
      const st = await gatectl(['--data-dir', a, 'status'])
      expect(st.code, st.stderr).toBe(4)
      expect(st.stderr).toMatch(/agent\.db is a directory/)

      const b = path.join(tmp.dir, 'b')
      mkdirSync(path.join(b, 'capture'), { recursive: true })
      const rp = await runAgentToExit([
        'run',
        '--data-dir',
        b,
        '--source',
        'replay',
        '--replay',
        path.join(b, 'capture'),
      ])
      expect(rp.code, rp.stderr).toBe(2)
      expect(rp.stderr).toMatch(/capture is a directory, not a capture file/)
      expect(rp.stderr).not.toMatch(/EISDIR/)
    } finally {
      tmp.cleanup()
    }
  }, 60_000)

  it("--data-dir under /proc fails at once with a clear error (Node's recursive mkdir spun there for ever)", async () => {
    const r = await runAgentToExit(['run', '--data-dir', '/proc/x/gate', '--source', 'sim'], {}, 20_000)
    expect(r.code, r.stderr).toBe(4)
    expect(r.stderr).toMatch(/cannot create the data directory \/proc\/x/)
    expect(() => makeDataDir('/proc/x')).toThrow(/takes no new directories/)
    // gatectl never makes the directory: it says there is no database there
    const g = await gatectl(['--data-dir', '/proc/x', 'roster', 'import', '/dev/null'], {}, 20_000)
    expect(g.code, g.stderr).toBe(4)
    expect(g.stderr).toMatch(/\/proc\/x\/agent\.db/)
  }, 30_000)

  it('an integrity check slower than its wait lets the agent start; its late verdict is logged', async () => {
    const tmp = tempDir()
    try {
      const dir = path.join(tmp.dir, 'data')
      damagedDatabase(path.join(tmp.dir, 'work'), dir)
      const lines: Array<{ level: number; msg: string }> = []
      const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) })
      const db = await openAgentDatabase(path.join(dir, 'agent.db'), log, { waitMs: 0 })
      db.close()
      expect(lines.map((l) => l.msg)).toContain(
        'database integrity check not finished; starting without waiting for it (it goes on in the background)',
      )
      await eventually(() => lines.some((l) => l.level === 50 && l.msg === 'database integrity check failed'))
      // without the wait, the same file is refused
      let err: unknown
      try {
        await openAgentDatabase(path.join(dir, 'agent.db'), log)
      } catch (e) {
        err = e
      }
      expect(isGateError(err, 'E_DB_CORRUPT')).toBe(true)
    } finally {
      tmp.cleanup()
    }
  }, 60_000)
})
