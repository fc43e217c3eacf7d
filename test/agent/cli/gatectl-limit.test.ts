import { spawn } from 'node:child_process'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openDatabase } from '../../../agent/store/db.js'
import { tempDir } from '../../support/helpers.js'
import { cleanEnv, GATECTL_BIN, gatectl } from '../../support/process-helpers.js'

describe('gatectl checkins --limit', () => {
  const tmp = tempDir()
  beforeAll(() => {
    const db = openDatabase(path.join(tmp.dir, 'agent.db'))
    const insert = db.prepare(
      `INSERT INTO checkins (id, gate_id, token, participant_id, method, decision, reason, rssi, wall_ms, mono_ms,
         boot_id, boot_seq, roster_version) VALUES (?, 'g1', 'abcd0001', 'P1', 'ble', 'admit', NULL, -60, ?, ?, 'b1', ?, 1)`,
    )
    for (let i = 0; i < 5; i++) insert.run(`id-${i}`, 1_700_000_000_000 + i, i, i)
    db.close()
  })
  afterAll(() => tmp.cleanup())

  it('refuses -1, 1e9, 0, 2.5 and more than 1,000,000 as a usage error (exit 2); takes 1..1,000,000 and "all"', async () => {
    const cases: Array<[string, string]> = [
      ['list', '-1'],
      ['list', '1e9'],
      ['list', '0'],
      ['list', '2.5'],
      ['list', '1000001'],
      ['export', '-1'],
      ['export', '1e9'],
    ]
    for (const [cmd, bad] of cases) {
      const r = await gatectl(['--data-dir', tmp.dir, 'checkins', cmd, '--limit', bad])
      expect(r.code, `checkins ${cmd} --limit "${bad}": ${r.stdout}`).toBe(2)
      expect(r.stderr).toContain(
        `--limit must be a whole number from 1 to 1,000,000, or "all" (got "${bad}")`,
      )
    }
    const three = await gatectl(['--data-dir', tmp.dir, '--json', 'checkins', '--limit', '3'])
    expect(three.code, three.stderr).toBe(0)
    expect(JSON.parse(three.stdout)).toHaveLength(3)
    const all = await gatectl(['--data-dir', tmp.dir, '--json', 'checkins', '--limit', 'all'])
    expect(JSON.parse(all.stdout)).toHaveLength(5)
    const most = await gatectl(['--data-dir', tmp.dir, '--json', 'checkins', '--limit', '1000000'])
    expect(JSON.parse(most.stdout)).toHaveLength(5)
  }, 120_000)

  it('stops quietly when its reader closes the pipe (gatectl doctor | head -1)', async () => {
    // the reader takes one line and goes, as `head -1` does: the lines doctor writes after that are
    // dropped without a stack trace, and the exit code is doctor's own
    const alone = await gatectl(['--data-dir', tmp.dir, 'doctor'])
    const child = spawn(process.execPath, [GATECTL_BIN, '--data-dir', tmp.dir, 'doctor'], {
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (d) => {
      stderr += String(d)
    })
    child.stdout.once('data', () => child.stdout.destroy())
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)))
    expect(stderr).not.toMatch(/EPIPE|Unhandled|at /)
    expect(code).toBe(alone.code)
  }, 60_000)
})
