import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FakeClock } from '../../../agent/clock.js'
import { Dedup } from '../../../agent/pipeline/dedup.js'
import { Validator } from '../../../agent/pipeline/validator.js'
import { type Db, openDatabase } from '../../../agent/store/db.js'
import { RosterStore } from '../../../agent/store/roster-store.js'
import { tempDir } from '../../support/helpers.js'

describe('validator over the SQLite roster', () => {
  let t: ReturnType<typeof tempDir>
  let db: Db
  let clock: FakeClock
  let roster: RosterStore
  beforeEach(() => {
    t = tempDir()
    db = openDatabase(path.join(t.dir, 'agent.db'))
    clock = new FakeClock()
    roster = new RosterStore(db, clock)
    roster.importEntries([
      { token: '0001aaaa', participantId: 'P1', status: 'active' },
      { token: '0002bbbb', participantId: 'P2', status: 'revoked' },
      { token: '0003cccc', participantId: 'P3', status: 'inactive' },
    ])
  })
  afterEach(() => {
    db.close()
    t.cleanup()
  })

  it('admits active tokens and denies revoked, inactive and unknown ones with the reason', () => {
    const v = new Validator(roster, { maxEntries: 100, negativeTtlMs: 10_000, clock })
    expect(v.validate('0001aaaa')).toEqual({
      decision: 'admit',
      reason: null,
      participantId: 'P1',
      rosterVersion: 1,
    })
    expect(v.validate('0002bbbb')).toMatchObject({ decision: 'deny', reason: 'revoked', participantId: 'P2' })
    expect(v.validate('0003cccc')).toMatchObject({ decision: 'deny', reason: 'inactive' })
    expect(v.validate('ffffffff')).toMatchObject({ decision: 'deny', reason: 'unknown', participantId: null })
  })

  it('serves repeats from L1, caches unknown tokens only briefly', () => {
    const v = new Validator(roster, { maxEntries: 100, negativeTtlMs: 10_000, clock })
    v.validate('0001aaaa')
    v.validate('0001aaaa')
    v.validate('ffffffff')
    v.validate('ffffffff')
    expect(v.hits).toBe(2)
    expect(v.misses).toBe(2)
    // the unknown token is added to the roster behind the cache's back: still unknown until the negative TTL ends
    db.prepare("INSERT INTO roster VALUES ('ffffffff', 'P9', 'active', NULL, 0, 1)").run()
    expect(v.validate('ffffffff').reason).toBe('unknown')
    clock.advance(10_001)
    expect(v.validate('ffffffff').decision).toBe('admit')
  })

  it('a roster import invalidates L1 at once and bumps the version', () => {
    const v = new Validator(roster, { maxEntries: 100, negativeTtlMs: 60_000, clock })
    expect(v.validate('0001aaaa').decision).toBe('admit')
    expect(v.validate('0004dddd').reason).toBe('unknown')
    roster.importEntries([
      { token: '0001aaaa', participantId: 'P1', status: 'revoked' },
      { token: '0004dddd', participantId: 'P4', status: 'active' },
    ])
    expect(v.validate('0001aaaa')).toMatchObject({ decision: 'deny', reason: 'revoked', rosterVersion: 2 })
    expect(v.validate('0004dddd')).toMatchObject({ decision: 'admit', rosterVersion: 2 })
  })

  it('a badge reissued in the cloud stays with its active holder when the former holder changes', () => {
    const v = new Validator(roster, { maxEntries: 100, negativeTtlMs: 60_000, clock })
    // P1's badge 0001aaaa was revoked and handed to P4, in one cloud transaction (either order)
    roster.applyDelta(
      [
        { token: '0001aaaa', participantId: 'P4', status: 'active' },
        { token: '0001aaaa', participantId: 'P1', status: 'revoked' },
      ],
      2,
    )
    expect(v.validate('0001aaaa')).toMatchObject({ decision: 'admit', participantId: 'P4' })
    // later P1's record is edited (still revoked, same token): P4 keeps the badge
    roster.applyDelta([{ token: '0001aaaa', participantId: 'P1', status: 'inactive' }], 3)
    expect(v.validate('0001aaaa')).toMatchObject({ decision: 'admit', participantId: 'P4' })
    // and when P4 is revoked, the badge is denied
    roster.applyDelta([{ token: '0001aaaa', participantId: 'P4', status: 'revoked' }], 4)
    expect(v.validate('0001aaaa')).toMatchObject({ decision: 'deny', reason: 'revoked', participantId: 'P4' })
  })

  it('is bounded by entries', () => {
    const v = new Validator(roster, { maxEntries: 10, negativeTtlMs: 60_000, clock })
    for (let i = 0; i < 1000; i++) v.validate(i.toString(16).padStart(8, '0'))
    expect(v.size()).toBeLessThanOrEqual(10)
  })
})

describe('dedup and re-entry', () => {
  const admit = { decision: 'admit' as const, reason: null, participantId: 'P1', rosterVersion: 1 }
  const unknown = {
    decision: 'deny' as const,
    reason: 'unknown' as const,
    participantId: null,
    rosterVersion: 1,
  }

  it('one check-in per window: the second arrival is denied once as already checked in, later ones suppressed', () => {
    const d = new Dedup(60_000)
    expect(d.check('t1', 0, 1).kind).toBe('validate')
    d.remember('t1', admit, 0)
    expect(d.check('t1', 10_000, 1)).toEqual({ kind: 'already_checked_in', participantId: 'P1' })
    expect(d.check('t1', 20_000, 1).kind).toBe('suppress')
    expect(d.check('t1', 59_999, 1).kind).toBe('suppress')
    // after the window: a re-entry, validated again
    expect(d.check('t1', 60_000, 1).kind).toBe('validate')
  })

  it('remembers a denial until the roster changes', () => {
    const d = new Dedup(60_000)
    d.remember('t2', unknown, 0)
    expect(d.check('t2', 5_000, 1)).toMatchObject({ kind: 'suppress', reason: 'unknown' })
    expect(d.check('t2', 6_000, 2).kind).toBe('validate')
  })

  it('is rebuilt from recorded decisions after a restart', () => {
    const d = new Dedup(60_000)
    const wallNow = 1_000_000
    const row = (ts: number, reason: 'already_checked_in' | null, decision: 'admit' | 'deny') => ({
      id: 'x',
      gateId: 'g',
      token: 't3',
      participantId: 'P3',
      method: 'ble' as const,
      decision,
      reason,
      rssi: -50,
      ts,
      monoMs: 0,
      bootId: 'b',
      bootSeq: 1,
      rosterVersion: 1,
    })
    d.restore(
      [row(wallNow - 30_000, null, 'admit'), row(wallNow - 20_000, 'already_checked_in', 'deny')],
      wallNow,
      500,
    )
    expect(d.check('t3', 500, 1).kind).toBe('suppress')
    expect(d.check('t3', 500 + 30_000, 1).kind).toBe('validate')
    // restarted with the wall clock back at 1970 (no RTC, no NTP yet): decisions "in the future"
    // are not believed, and nobody is held out for decades
    const wrong = new Dedup(60_000)
    wrong.restore([row(wallNow - 30_000, null, 'admit')], 5_000, 500)
    expect(wrong.check('t3', 500, 1).kind).toBe('validate')
  })
})
