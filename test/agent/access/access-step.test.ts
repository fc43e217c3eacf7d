import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AccessStep } from '../../../agent/access/access-step.js'
import { PolicyStore } from '../../../agent/access/policy-store.js'
import { FakeClock } from '../../../agent/clock.js'
import type { Verdict } from '../../../agent/pipeline/validator.js'
import { type Db, openDatabase } from '../../../agent/store/db.js'
import { Outbox } from '../../../agent/store/outbox.js'
import { parsePolicy } from '../../../shared/access/policy.js'
import { silentLog, tempDir } from '../../support/helpers.js'

const POLICY = parsePolicy({
  version: 2,
  timeZone: 'UTC',
  zones: [
    { id: 'hall', name: 'Main hall' },
    { id: 'vip', name: 'VIP lounge', capacity: 2 },
  ],
  lanes: [
    { gate: 'vip-door', from: 'hall', to: 'vip' },
    { gate: 'vip-exit', from: 'vip', to: 'hall' },
    { gate: 'hall-in', to: 'hall' },
  ],
  rules: [
    { id: 'vip', name: 'VIP guests', zone: 'vip', categories: ['vip'], antiPassback: true },
    { id: 'hall', name: 'Everyone', zone: 'hall' },
  ],
})

const admit = (participantId: string): Verdict => ({
  decision: 'admit',
  reason: null,
  participantId,
  rosterVersion: 1,
  category: 'vip',
  tags: [],
})

/** The gate's access step over a real SQLite file, its decisions made durable through the outbox. */
describe('the access rules at the gate, over its SQLite file', () => {
  let tmp: ReturnType<typeof tempDir>
  let db: Db
  let clock: FakeClock
  let outbox: Outbox

  const open = () => {
    db = openDatabase(path.join(tmp.dir, 'agent.db'))
    outbox = new Outbox(db, {
      clock,
      log: silentLog,
      gateId: 'vip-door',
      bootId: '0192b1c0-0000-7000-8000-000000000001',
      groupCommitDelayMs: 0,
    })
    const policies = new PolicyStore(db, silentLog)
    if (!POLICY.ok) throw new Error(POLICY.problems.join())
    if (policies.version() === 0) policies.set(POLICY.policy)
    const step = new AccessStep({ gateId: 'vip-door', clock, log: silentLog, policies, db })
    step.rebuild(db)
    return step
  }
  /** What the pipeline does: the rules, then the durable commit, then the ledger. */
  const pass = async (step: AccessStep, participantId: string, awaitingPassage = false) => {
    const v = step.apply(admit(participantId))
    let id = ''
    await new Promise<void>((resolve) => {
      outbox.append(
        {
          token: `00${participantId}`,
          participantId,
          decision: v.decision,
          reason: v.reason,
          rssi: -50,
          rosterVersion: 1,
          monoMs: clock.mono(),
          access: v.access,
        },
        (c) => {
          id = c.id
          step.committed(c, v.access, awaitingPassage)
          resolve()
        },
      )
    })
    return { ...v, id }
  }
  /** What the pipeline does when the turnstile did not see them through: the record annulling it. */
  const annul = (step: AccessStep, admitId: string, participantId: string) =>
    new Promise<void>((resolve) => {
      outbox.append(
        {
          token: `00${participantId}`,
          participantId,
          decision: 'deny',
          reason: 'not_passed',
          rssi: -50,
          rosterVersion: 1,
          monoMs: clock.mono(),
          access: {
            zoneIn: 'vip',
            zoneOut: 'hall',
            ruleId: 'vip',
            explanation: null,
            warnings: [],
            policyVersion: 2,
          },
          annuls: admitId,
        },
        (c) => {
          step.annulled(admitId, c)
          resolve()
        },
      )
    })

  beforeEach(() => {
    tmp = tempDir()
    clock = new FakeClock(Date.UTC(2026, 11, 5, 12, 0, 0))
  })
  afterEach(() => {
    db.close()
    tmp.cleanup()
  })

  it('without an allotment from the cloud, a zone with a capacity is full', async () => {
    const step = open()
    const v = await pass(step, 'p1')
    expect(v).toMatchObject({ decision: 'deny', reason: 'zone_full' })
    expect(v.access?.explanation).toBe('VIP lounge is full (capacity 2)')
  })

  it('admits up to its allotment, then denies; after a restart it remembers both who is inside and what it used', async () => {
    let step = open()
    step.tallies.allot({ vip: { period: '', limit: 2 } })
    expect((await pass(step, 'p1')).access).toMatchObject({ zoneIn: 'vip', zoneOut: 'hall', ruleId: 'vip' })
    expect((await pass(step, 'p1')).reason).toBe('anti_passback')
    expect((await pass(step, 'p2')).decision).toBe('admit')
    expect((await pass(step, 'p3')).reason).toBe('zone_full')
    expect(step.tallies.report()).toEqual({
      vip: { period: '', entries: 2, exits: 0, annulled: 0 },
      hall: { period: '', entries: 0, exits: 2, annulled: 0 },
    })
    outbox.flush()
    db.close()

    // a restart, offline: the ledger and the tallies are rebuilt from the file, the allotment kept
    step = open()
    expect((await pass(step, 'p1')).reason).toBe('anti_passback')
    expect((await pass(step, 'p3')).reason).toBe('zone_full')
    expect(step.tallies.report()['vip']).toMatchObject({ entries: 2 })
  })

  it('an admit not seen through the gate is annulled: its place is free, the person may try again, a restart agrees', async () => {
    let step = open()
    step.tallies.allot({ vip: { period: '', limit: 1 } })
    const first = await pass(step, 'p1', true)
    expect(first.decision).toBe('admit')
    // while they walk through, the place is held and the exit from the hall is not counted yet
    expect((await pass(step, 'p2', true)).reason).toBe('zone_full')
    expect(step.tallies.report()['hall']).toBeUndefined()
    await annul(step, first.id, 'p1')
    expect(step.tallies.report()['vip']).toEqual({ period: '', entries: 1, exits: 0, annulled: 1 })
    // no anti-passback against an entry that never happened, and the place is free again
    const again = await pass(step, 'p1', true)
    expect(again.decision).toBe('admit')
    step.passed(again.id)
    expect(step.tallies.report()).toEqual({
      vip: { period: '', entries: 2, exits: 0, annulled: 1 },
      hall: { period: '', entries: 0, exits: 1, annulled: 0 },
    })
    outbox.flush()
    db.close()

    // a restart: the annulled entry counts as entered and annulled, the other as passed
    step = open()
    expect(step.tallies.report()).toEqual({
      vip: { period: '', entries: 2, exits: 0, annulled: 1 },
      hall: { period: '', entries: 0, exits: 1, annulled: 0 },
    })
    expect((await pass(step, 'p1')).reason).toBe('anti_passback')
  })

  it('knows who left its zone by another gate: their next arrival is a re-entry, not a lingering badge', async () => {
    const step = open()
    step.tallies.allot({ vip: { period: '', limit: 10 } })
    expect(step.leftZone('p1')).toBe(true) // never came in
    const first = await pass(step, 'p1')
    expect(first.decision).toBe('admit')
    expect(step.leftZone('p1')).toBe(false) // inside the lounge
    // the lounge's other door lets p1 out, and says so over the venue's broker
    step.learn({
      v: 1,
      id: '0192b1c0-0000-7000-8000-0000000000e1',
      gateId: 'vip-exit',
      participantId: 'p1',
      zoneIn: 'hall',
      zoneOut: 'vip',
      ts: clock.now(),
      policyVersion: 2,
    })
    expect(step.leftZone('p1')).toBe(true)
  })

  it('a gate the policy gives no lane denies everyone, and says so', async () => {
    db = openDatabase(path.join(tmp.dir, 'agent.db'))
    const policies = new PolicyStore(db, silentLog)
    if (POLICY.ok) policies.set(POLICY.policy)
    const step = new AccessStep({ gateId: 'side-door', clock, log: silentLog, policies, db })
    expect(step.apply(admit('p1'))).toMatchObject({ decision: 'deny', reason: 'no_lane' })
  })
})

describe('the nightly checkout at the gate', () => {
  let tmp: ReturnType<typeof tempDir>
  let db: Db

  beforeEach(() => {
    tmp = tempDir()
    db = openDatabase(path.join(tmp.dir, 'agent.db'))
  })
  afterEach(() => {
    db.close()
    tmp.cleanup()
  })

  it('checks everyone out at the zone time of day: anti-passback and the counts start again', async () => {
    const night = parsePolicy({
      version: 1,
      timeZone: 'Europe/Berlin',
      zones: [{ id: 'hall', name: 'Main hall', capacity: 100, checkoutAt: '04:00' }],
      lanes: [{ gate: 'north-in', to: 'hall' }],
      rules: [{ id: 'all', name: 'Everyone', zone: 'hall', antiPassback: true }],
    })
    if (!night.ok) throw new Error(night.problems.join())
    // 03:00 in Berlin on 2026-12-06 (UTC+1)
    const clock = new FakeClock(Date.UTC(2026, 11, 6, 2, 0, 0))
    const policies = new PolicyStore(db, silentLog)
    policies.set(night.policy)
    const step = new AccessStep({ gateId: 'north-in', clock, log: silentLog, policies, db })
    step.tallies.allot({ hall: { period: '2026-12-05', limit: 100 } })
    const first = step.apply(admit('p1'))
    expect(first.access?.zoneIn).toBe('hall')
    step.committed(
      {
        id: '0192b1c0-0000-7000-8000-000000000010',
        gateId: 'north-in',
        token: '00aa',
        participantId: 'p1',
        method: 'ble',
        decision: 'admit',
        reason: null,
        rssi: -50,
        ts: clock.now(),
        monoMs: 1,
        bootId: '0192b1c0-0000-7000-8000-000000000001',
        bootSeq: 1,
        rosterVersion: 1,
      },
      first.access,
    )
    expect(step.apply(admit('p1')).reason).toBe('anti_passback')
    expect(step.status()?.zones).toEqual([
      { zone: 'hall', period: '2026-12-05', entries: 1, exits: 0, allotment: 100 },
    ])
    // 04:00: the checkout. Inside no more; the old period's allotment is no allotment
    clock.advance(3_600_000)
    const after = step.apply(admit('p1'))
    expect(after).toMatchObject({ decision: 'deny', reason: 'zone_full' })
    step.tallies.allot({ hall: { period: '2026-12-06', limit: 100 } })
    expect(step.apply(admit('p1'))).toMatchObject({ decision: 'admit', access: { zoneIn: 'hall' } })
  })
})
