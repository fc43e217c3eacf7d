import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AccessStep } from '../../../agent/access/access-step.js'
import { PolicyStore } from '../../../agent/access/policy-store.js'
import { systemClock } from '../../../agent/clock.js'
import type { Verdict } from '../../../agent/pipeline/validator.js'
import { MqttReporter } from '../../../agent/report/mqtt-reporter.js'
import { passageFrom } from '../../../agent/report/passages.js'
import { type Db, openDatabase } from '../../../agent/store/db.js'
import { Outbox } from '../../../agent/store/outbox.js'
import { parsePolicy } from '../../../shared/access/policy.js'
import { reporterDeps, silentLog, tempDir } from '../../support/helpers.js'
import { eventually } from '../../support/process-helpers.js'

// gate ids unique to this run: the broker is shared with other tests and other runs
const run = Math.random().toString(36).slice(2, 8)
const NORTH = `north-${run}`
const SOUTH = `south-${run}`
const EXIT = `exit-${run}`

const POLICY = parsePolicy({
  version: 1,
  timeZone: 'UTC',
  zones: [{ id: 'hall', name: 'Main hall' }],
  lanes: [
    { gate: NORTH, to: 'hall' },
    { gate: SOUTH, to: 'hall' },
    { gate: EXIT, from: 'hall' },
  ],
  rules: [{ id: 'hall', name: 'Everyone', zone: 'hall', antiPassback: true }],
})

const admit = (participantId: string): Verdict => ({
  decision: 'admit',
  reason: null,
  participantId,
  rosterVersion: 1,
  category: null,
  tags: [],
})

/** One gate: its SQLite file, its access step, its outbox and its MQTT reporter on the local broker. */
class TestGate {
  readonly db: Db
  readonly access: AccessStep
  readonly outbox: Outbox
  readonly reporter: MqttReporter

  constructor(dir: string, gateId: string) {
    this.db = openDatabase(path.join(dir, `${gateId}.db`))
    const policies = new PolicyStore(this.db, silentLog)
    if (!POLICY.ok) throw new Error(POLICY.problems.join())
    policies.set(POLICY.policy)
    this.access = new AccessStep({ gateId, clock: systemClock, log: silentLog, policies, db: this.db })
    this.outbox = new Outbox(this.db, {
      clock: systemClock,
      log: silentLog,
      gateId,
      bootId: '0192b1c0-0000-7000-8000-000000000002',
      groupCommitDelayMs: 0,
    })
    this.reporter = new MqttReporter(
      reporterDeps(this.db, { gateId, intervalMs: 60_000, onPassage: (p) => this.access.learn(p) }),
    )
    this.access.onShare = (p) => this.reporter.sharePassage(p)
    this.reporter.start()
  }

  /** A badge at this gate: the rules, the durable commit, then the ledger and the share. */
  pass(participantId: string): Promise<Verdict> {
    const v = this.access.apply(admit(participantId))
    return new Promise((resolve) => {
      this.outbox.append(
        {
          token: '00aa',
          participantId,
          decision: v.decision,
          reason: v.reason,
          rssi: -50,
          rosterVersion: 1,
          monoMs: performance.now(),
          access: v.access,
        },
        (c) => {
          this.access.committed(c, v.access)
          resolve(v)
        },
      )
    })
  }

  async stop(): Promise<void> {
    await this.reporter.stop()
    this.db.close()
  }
}

describe('anti-passback across the gates of a zone, over the venue broker', () => {
  let tmp: ReturnType<typeof tempDir>
  let gates: TestGate[] = []

  beforeEach(async () => {
    tmp = tempDir()
    gates = [new TestGate(tmp.dir, NORTH), new TestGate(tmp.dir, SOUTH), new TestGate(tmp.dir, EXIT)]
    await eventually(async () => gates.every((g) => g.reporter.subscribed), 10_000, 50)
  })
  afterEach(async () => {
    for (const g of gates) await g.stop()
    tmp.cleanup()
  })

  it('an entry at one gate is known at the other within a second; an exit anywhere clears it', async () => {
    const [north, south, exit] = gates as [TestGate, TestGate, TestGate]
    expect((await north.pass('p-1')).decision).toBe('admit')
    const t0 = performance.now()
    await eventually(async () => south.access.apply(admit('p-1')).reason === 'anti_passback', 1_000, 10)
    expect(performance.now() - t0).toBeLessThan(1_000)
    // out through the exit gate: both entrances hear it
    expect(await exit.pass('p-1')).toMatchObject({ decision: 'admit', access: { zoneOut: 'hall' } })
    await eventually(async () => south.access.apply(admit('p-1')).decision === 'admit', 1_000, 10)
    await eventually(async () => north.access.apply(admit('p-1')).decision === 'admit', 1_000, 10)
  })

  it('ignores a passage of a gate its policy does not name, and one heard twice', () => {
    const [north] = gates as [TestGate]
    const passage = {
      v: 1 as const,
      id: '0192b1c0-0000-7000-8000-00000000beef',
      gateId: 'other-event-gate',
      participantId: 'p-2',
      zoneIn: 'hall',
      zoneOut: null,
      ts: Date.now(),
      policyVersion: 1,
    }
    expect(north.access.learn(passage)).toBe(false)
    expect(north.access.learn({ ...passage, gateId: SOUTH })).toBe(true)
    expect(north.access.learn({ ...passage, gateId: SOUTH })).toBe(false)
    expect(north.access.apply(admit('p-2')).reason).toBe('anti_passback')
    // that admit was annulled at the south gate (nobody walked through): undone here too
    const annul = {
      ...passage,
      gateId: SOUTH,
      id: '0192b1c0-0000-7000-8000-00000000bee0',
      annuls: passage.id,
    }
    expect(north.access.learn(annul)).toBe(true)
    expect(north.access.apply(admit('p-2')).decision).toBe('admit')
  })
})

describe('a passage off the broker', () => {
  const good = {
    v: 1,
    id: '0192b1c0-0000-7000-8000-00000000cafe',
    gateId: 'south-in',
    participantId: 'p-3',
    zoneIn: 'hall',
    zoneOut: null,
    ts: 1_764_900_000_000,
    policyVersion: 2,
  }
  const raw = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v))

  it('is taken when it is well formed and its topic names its gate', () => {
    expect(passageFrom('gates/south-in/passages', raw(good))).toEqual(good)
  })

  it('is garbage otherwise: not JSON, not the schema, or another gate than its topic names', () => {
    expect(passageFrom('gates/south-in/passages', raw('{not json'))).toBeNull()
    expect(passageFrom('gates/south-in/passages', raw({ ...good, extra: 1 }))).toBeNull()
    expect(passageFrom('gates/south-in/passages', raw({ ...good, participantId: '' }))).toBeNull()
    // a gate publishing a passage in another gate's name
    expect(passageFrom('gates/north-in/passages', raw(good))).toBeNull()
  })
})
