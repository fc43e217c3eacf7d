import { describe, expect, it } from 'vitest'
import { Dedup } from '../../../agent/pipeline/dedup.js'

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
    expect(d.check('t1', 10_000, 1)).toEqual({ kind: 'already_checked_in' })
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
