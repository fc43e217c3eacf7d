import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FakeClock } from '../../../agent/clock.js'
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
      category: null,
      tags: [],
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
    db.prepare(
      "INSERT INTO roster (token, participant_id, status, name, updated_at, version) VALUES ('ffffffff', 'P9', 'active', NULL, 0, 1)",
    ).run()
    expect(v.validate('ffffffff').reason).toBe('unknown')
    clock.advance(10_001)
    expect(v.validate('ffffffff').decision).toBe('admit')
  })

  it("carries the holder's category and tags for the access rules", () => {
    roster.importEntries([
      {
        token: '0005eeee',
        participantId: 'P5',
        status: 'active',
        category: 'vip',
        tags: ['speaker', 'press'],
      },
    ])
    const v = new Validator(roster, { maxEntries: 100, negativeTtlMs: 10_000, clock })
    expect(v.validate('0005eeee')).toMatchObject({ category: 'vip', tags: ['speaker', 'press'] })
    // a change of tags alone is a roster change: the cache forgets the token
    roster.applyDelta(
      [{ token: '0005eeee', participantId: 'P5', status: 'active', category: 'vip', tags: [] }],
      9,
    )
    expect(v.validate('0005eeee')).toMatchObject({ category: 'vip', tags: [] })
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
