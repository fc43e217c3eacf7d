import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { FakeClock, type MachineMono, systemClock } from '../../../agent/clock.js'
import { Dedup } from '../../../agent/pipeline/dedup.js'
import { openDatabase } from '../../../agent/store/db.js'
import { Outbox } from '../../../agent/store/outbox.js'
import { recentDecisions, recordRun } from '../../../agent/store/recent-decisions.js'
import { silentLog, tempDir } from '../../support/helpers.js'

const HOUR = 3_600_000
const WINDOW = 300_000
const W0 = Date.UTC(2026, 10, 25, 9, 0, 0)

/**
 * A file where run 'r1' of machine boot 'K' (its monotonic clock at 1,000 ms of the machine's)
 * admitted token t1 at its mono 5,000 (the machine's 6,000), the wall clock saying W0.
 */
function fileWithOneAdmit(dir: string) {
  const db = openDatabase(path.join(dir, 'agent.db'))
  recordRun(db, 'r1', { boot: 'K', originMs: 1_000 })
  const outbox = new Outbox(db, {
    clock: new FakeClock(W0, 5_000),
    log: silentLog,
    gateId: 'g1',
    bootId: 'r1',
    groupCommitDelayMs: 0,
  })
  outbox.append(
    {
      token: 't1',
      participantId: 'P1',
      decision: 'admit',
      reason: null,
      rssi: -50,
      rosterVersion: 1,
      monoMs: 5_000,
    },
    () => {},
  )
  outbox.flush()
  return db
}

/** What the re-entry window says of t1 after a start at `wallNow`, the machine's clock at `machine`. */
function afterRestart(dir: string, wallNow: number, machine: MachineMono | null): string {
  const db = openDatabase(path.join(dir, 'agent.db'))
  try {
    const dedup = new Dedup(WINDOW)
    dedup.restore(recentDecisions(db, { windowMs: WINDOW, wallNow, machine, monoNow: 100 }), wallNow, 100)
    return dedup.check('t1', 100, 1).kind
  } finally {
    db.close()
  }
}

describe('the re-entry window rebuilt at start, the wall clock having jumped', () => {
  it('dates decisions of the same machine boot by its monotonic clock, not the wall clock', () => {
    const t = tempDir()
    try {
      fileWithOneAdmit(t.dir).close()
      // restarted 44 s later by the machine's clock (its mono 100 = the machine's 50,100)
      const later = { boot: 'K', originMs: 50_000 }
      expect(afterRestart(t.dir, W0 + 44_000, later)).toBe('already_checked_in')
      // the wall clock 3 h back: the admit looks "in the future", and still holds
      expect(afterRestart(t.dir, W0 - 3 * HOUR, later)).toBe('already_checked_in')
      // the wall clock 2 h ahead: the admit looks 2 h old, and still holds
      expect(afterRestart(t.dir, W0 + 2 * HOUR, later)).toBe('already_checked_in')
      // 10 minutes later by the machine's clock, whatever the wall clock says: a re-entry
      expect(afterRestart(t.dir, W0 + 44_000, { boot: 'K', originMs: 600_000 })).toBe('validate')
    } finally {
      t.cleanup()
    }
  })

  it('leaves decisions of an earlier machine boot to the wall clock ("in the future" not believed)', () => {
    const t = tempDir()
    try {
      fileWithOneAdmit(t.dir).close()
      const rebooted = { boot: 'K2', originMs: 10 }
      expect(afterRestart(t.dir, W0 + 44_000, rebooted)).toBe('already_checked_in')
      expect(afterRestart(t.dir, W0 + WINDOW, rebooted)).toBe('validate')
      // a Pi back at 1970 after a reboot holds nobody out for decades
      expect(afterRestart(t.dir, 5_000, rebooted)).toBe('validate')
      expect(afterRestart(t.dir, W0 + 44_000, null)).toBe('already_checked_in')
    } finally {
      t.cleanup()
    }
  })

  it('forgets the places of runs of earlier machine boots', () => {
    const t = tempDir()
    try {
      const db = fileWithOneAdmit(t.dir)
      recordRun(db, 'r2', { boot: 'K2', originMs: 10 })
      const keys = db.prepare("SELECT key FROM meta WHERE key LIKE 'mono_origin:%'").all()
      db.close()
      expect(keys).toEqual([{ key: 'mono_origin:r2' }])
    } finally {
      t.cleanup()
    }
  })

  it('the real clock knows its place on the machine clock', () => {
    const m = systemClock.machine?.()
    expect(m?.boot).toMatch(/^[0-9a-f-]{36}$/)
    // CLOCK_MONOTONIC at this process's mono() 0: since the machine booted, before now
    expect(m?.originMs).toBeGreaterThan(0)
    expect(
      Math.abs((m?.originMs ?? 0) + systemClock.mono() - Number(process.hrtime.bigint()) / 1e6),
    ).toBeLessThan(50)
  })
})
