import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import pino from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { GateAgent } from '../../../agent/agent.js'
import { PushSource } from '../../../agent/ble/push-source.js'
import { FakeClock, systemClock } from '../../../agent/clock.js'
import { agentConfigSchema } from '../../../agent/config/schema.js'
import { CLAIM_QUERIES } from '../../../agent/store/claims.js'
import { openDatabase } from '../../../agent/store/db.js'
import { Outbox } from '../../../agent/store/outbox.js'
import { listCheckins, outboxCounts } from '../../../agent/store/outbox-queries.js'
import { RosterStore } from '../../../agent/store/roster-store.js'
import { SCHEMA_VERSION } from '../../../agent/store/schema.js'
import { StoreThread } from '../../../agent/store/store-thread.js'
import { checkinSchema } from '../../../shared/checkin.js'
import { isGateError } from '../../../shared/errors.js'
import { appendDenied, recordAllStored, silentLog, tempDir } from '../../support/helpers.js'
import { eventually } from '../../support/process-helpers.js'

const BOOT = '0193f9a0-0000-4000-8000-000000000001'

function draft(token: string, decision: 'admit' | 'deny' = 'admit') {
  return {
    token,
    participantId: 'P1',
    decision,
    reason: decision === 'deny' ? ('unknown' as const) : null,
    rssi: -55,
    rosterVersion: 1,
    monoMs: 10,
  }
}

describe('agent database', () => {
  let t: ReturnType<typeof tempDir>
  beforeEach(() => {
    t = tempDir()
  })
  afterEach(() => t.cleanup())

  it('creates, migrates and reopens a WAL database with synchronous=FULL', () => {
    const file = path.join(t.dir, 'agent.db')
    const db = openDatabase(file)
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(db.pragma('synchronous', { simple: true })).toBe(2)
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
    db.close()
    openDatabase(file).close()
  })

  it('refuses a file that is not SQLite and leaves it untouched', () => {
    const file = path.join(t.dir, 'agent.db')
    writeFileSync(file, 'these are my holiday photos, not a database\n'.repeat(100))
    const before = readFileSync(file)
    let err: unknown
    try {
      openDatabase(file)
    } catch (e) {
      err = e
    }
    expect(isGateError(err, 'E_DB_FOREIGN')).toBe(true)
    expect(readFileSync(file).equals(before)).toBe(true)
  })

  it("refuses another program's SQLite database", () => {
    const file = path.join(t.dir, 'agent.db')
    const other = new Database(file)
    other.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)')
    other.close()
    const before = readFileSync(file)
    expect(() => openDatabase(file)).toThrow(/another program/)
    expect(readFileSync(file).equals(before)).toBe(true)
  })

  it('gives a clear error for a corrupted database and never overwrites it', () => {
    const file = path.join(t.dir, 'agent.db')
    const db = openDatabase(file)
    const roster = new RosterStore(db, new FakeClock())
    roster.importEntries(
      Array.from({ length: 2000 }, (_, i) => ({
        token: i.toString(16).padStart(8, '0'),
        participantId: `P${i}`,
        status: 'active' as const,
      })),
    )
    db.pragma('wal_checkpoint(TRUNCATE)')
    db.close()
    const bytes = readFileSync(file)
    // keep the header page, trash the schema and data pages
    for (let i = 100; i < bytes.length; i += 7) bytes[i] = (bytes[i]! ^ 0x5a) & 0xff
    writeFileSync(file, bytes)
    let err: unknown
    try {
      const d = openDatabase(file)
      d.prepare('SELECT count(*) FROM roster').get()
      d.close()
    } catch (e) {
      err = e
    }
    expect(isGateError(err, 'E_DB_CORRUPT') || isGateError(err, 'E_DB_FOREIGN')).toBe(true)
    expect((err as Error).message).toMatch(/left untouched/)
    expect(readFileSync(file).equals(bytes)).toBe(true)
  })

  it('refuses a database written by a newer agent', () => {
    const file = path.join(t.dir, 'agent.db')
    const db = openDatabase(file)
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
    db.close()
    expect(() => openDatabase(file)).toThrow(/newer than this agent/)
  })
})

describe('outbox', () => {
  let t: ReturnType<typeof tempDir>
  let file: string
  let clock: FakeClock
  beforeEach(() => {
    t = tempDir()
    file = path.join(t.dir, 'agent.db')
    clock = new FakeClock()
  })
  afterEach(() => t.cleanup())

  const make = (db = openDatabase(file)) =>
    new Outbox(db, { clock, log: silentLog, gateId: 'g1', bootId: BOOT, groupCommitDelayMs: 0 })

  it("emits a decision only after it is committed, group-committing a tick's decisions together", async () => {
    const outbox = make()
    const reader = new Database(file, { readonly: true })
    const seenInDb: number[] = []
    const done = new Promise<void>((resolve) => {
      for (let i = 0; i < 50; i++) {
        outbox.append(draft(`aa${i.toString(16).padStart(6, '0')}`), (c) => {
          seenInDb.push(
            (reader.prepare('SELECT count(*) AS n FROM checkins WHERE id = ?').get(c.id) as { n: number }).n,
          )
          if (seenInDb.length === 50) resolve()
        })
      }
    })
    expect(outbox.queued()).toBe(50)
    await done
    expect(seenInDb.every((n) => n === 1)).toBe(true)
    expect(outbox.stats.commits).toBe(1)
    expect(outbox.stats.rowsWritten).toBe(50)
    reader.close()
  })

  it('remembers when a commit was slow (what makes a backlog drain yield to decisions)', () => {
    const db = openDatabase(file)
    const slow = new Outbox(db, {
      clock,
      log: silentLog,
      gateId: 'g1',
      bootId: BOOT,
      groupCommitDelayMs: 0,
      slowCommitMs: 0, // every commit (an fsync takes more than 0 ms) counts as slow
    })
    expect(slow.msSinceSlowCommit()).toBe(Number.POSITIVE_INFINITY)
    slow.append(draft('bb000001'), () => {})
    slow.flush()
    expect(slow.msSinceSlowCommit()).toBeLessThan(1_000)
    const never = new Outbox(db, { clock, log: silentLog, gateId: 'g1', bootId: BOOT, groupCommitDelayMs: 0 })
    never.append(draft('bb000002'), () => {})
    never.flush()
    expect(never.msSinceSlowCommit()).toBe(Number.POSITIVE_INFINITY)
    db.close()
  })

  it('gives every check-in a UUIDv7, the boot id and a per-boot sequence', () => {
    const outbox = make()
    const a = outbox.append(draft('aa000001'), () => {})
    const b = outbox.append(draft('aa000002'), () => {})
    outbox.flush()
    expect(a.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(a.id < b.id).toBe(true)
    expect([a.bootSeq, b.bootSeq]).toEqual([1, 2])
    expect(a.bootId).toBe(BOOT)
  })

  it.each([
    ['on the main thread', false],
    ['rendered by the store thread', true],
  ])(
    "moves rows pending -> in flight -> synced; unanswered rows and a crash's claims return to pending (claims %s)",
    async (_, threaded) => {
      const db = openDatabase(file)
      const thread = threaded ? new StoreThread(db, file, silentLog, { queries: CLAIM_QUERIES }) : undefined
      thread?.start()
      const outbox = new Outbox(db, {
        clock,
        log: silentLog,
        gateId: 'g1',
        bootId: BOOT,
        groupCommitDelayMs: 0,
        ...(thread ? { thread } : {}),
      })
      for (let i = 0; i < 10; i++) outbox.append(draft(`bb${i.toString(16).padStart(6, '0')}`), () => {})
      outbox.flush()
      const first = await outbox.claim(4)
      expect(first.records.map((c) => c.bootSeq)).toEqual([1, 2, 3, 4])
      expect(outbox.counts()).toMatchObject({ pending: 6, inFlight: 4, synced: 0 })
      const second = await outbox.claim(3)
      expect(second.records.map((c) => c.bootSeq)).toEqual([5, 6, 7])
      // the cloud stored two of the first claim and did not mention the others
      await outbox.recordSync(
        first,
        first.records.slice(0, 2).map((c) => c.id),
      )
      expect(outbox.counts()).toMatchObject({ pending: 5, inFlight: 3, synced: 2 })
      // an answer naming rows of another claim marks nothing outside its own claim
      const third = await outbox.claim(10)
      expect(third.records.map((c) => c.bootSeq)).toEqual([3, 4]) // unanswered rows go first
      await outbox.recordSync(
        third,
        second.records.map((c) => c.id),
      )
      expect(outbox.counts()).toMatchObject({ pending: 5, inFlight: 3, synced: 2 })
      // the store thread rendered every claim (none fell back to the main thread)
      if (thread) expect(thread.stats.reads).toBe(3)
      await thread?.stop()
      db.close() // "crash" with rows in flight: a claim is never written, so they are simply pending
      const again = make()
      expect(again.recoverInFlight()).toBe(0)
      expect(again.counts()).toMatchObject({ pending: 8, inFlight: 0, synced: 2 })
      expect(again.claimBatch(100).records.map((c) => c.bootSeq)).toEqual([3, 4, 5, 6, 7, 8, 9, 10])
    },
  )

  it('claims records in the wire format the cloud validates', () => {
    const outbox = make()
    outbox.append(draft('ee000001'), () => {})
    outbox.flush()
    const [r] = outbox.claimBatch(10).records
    expect(checkinSchema.parse(r)).toEqual(r)
    expect(r).toMatchObject({ token: 'ee000001', gateId: 'g1', method: 'ble', bootSeq: 1 })
  })

  it('prunes old synced rows but never pending ones, nor the newest row', async () => {
    const outbox = make()
    for (let i = 0; i < 4; i++) outbox.append(draft(`cc${i.toString(16).padStart(6, '0')}`), () => {})
    outbox.flush()
    const c = outbox.claimBatch(2)
    await recordAllStored(outbox, c)
    clock.advance(30 * 86_400_000)
    expect(outbox.prune(14).deleted).toBe(2)
    expect(outbox.counts()).toMatchObject({ pending: 2, synced: 0 })
    const rest = outbox.claimBatch(10)
    await recordAllStored(outbox, rest)
    clock.advance(30 * 86_400_000)
    // the newest row stays, so SQLite never hands out a seq_no the syncer has already passed
    expect(outbox.prune(14).deleted).toBe(1)
    outbox.append(draft('cc000009'), () => {})
    outbox.flush()
    expect(outbox.claimBatch(10).records.map((r) => r.token)).toEqual(['cc000009'])
  })

  it('prunes a slice of rows at a time, oldest first, stopping at the young ones', async () => {
    const outbox = make()
    appendDenied(outbox, 30)
    const c = outbox.claimBatch(30)
    const ids = c.records.map((r) => r.id)
    // the cloud refused the second row: it stays, and does not stop the prune
    await outbox.recordSync(
      c,
      ids.filter((_, i) => i !== 1),
      [{ id: ids[1] ?? '', reason: 'ts_in_future' }],
    )
    clock.advance(30 * 86_400_000)
    appendDenied(outbox, 5) // today's rows, pending
    expect(outbox.prune(14, { limit: 12 })).toEqual({ deleted: 11, next: 12 })
    expect(outbox.prune(14, { from: 12, limit: 12 })).toEqual({ deleted: 12, next: 24 })
    // this slice reaches today's rows: done
    expect(outbox.prune(14, { from: 24, limit: 12 })).toEqual({ deleted: 6, next: null })
    expect(outbox.counts()).toMatchObject({ pending: 5, synced: 1 })
    // the next hour: nothing old left, one short slice looked at
    expect(outbox.prune(14, { limit: 12 })).toEqual({ deleted: 0, next: null })
  })

  it('puts the rows of a slice that failed to record back to pending, and claims them again', async () => {
    const db = openDatabase(file)
    const outbox = make(db)
    appendDenied(outbox, 10)
    const claim = outbox.claimBatch(10)
    const records = claim.records
    // the slice's last statement (the refusal) fails: the whole slice is rolled back
    db.exec(
      "CREATE TRIGGER boom BEFORE UPDATE OF sync_error ON checkins BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    await expect(
      outbox.recordSync(
        claim,
        records.slice(1).map((r) => r.id),
        [{ id: records[0]?.id ?? '', reason: 'ts_in_future' }],
      ),
    ).rejects.toThrow(/disk full/)
    db.exec('DROP TRIGGER boom')
    expect(outbox.counts()).toMatchObject({ pending: 10, inFlight: 0, synced: 0 })
    expect(outboxCounts(db)).toMatchObject({ pending: 10, synced: 0 })
    expect(outbox.claimBatch(20).count).toBe(10)
  })

  it('stops retrying a failed commit once closed (a stopping agent does not linger)', async () => {
    const db = openDatabase(file)
    const outbox = make(db)
    outbox.append(draft('dd000002'), () => {})
    db.exec("CREATE TRIGGER boom BEFORE INSERT ON checkins BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    expect(() => outbox.flush()).toThrow(/outbox commit failed/)
    outbox.close()
    await new Promise((r) => setTimeout(r, 700)) // the retry was due after 500 ms
    expect(outbox.stats.commitErrors).toBe(1)
  })

  it('sends refused rows again on request, without touching rows in flight', async () => {
    const db = openDatabase(file)
    const outbox = make(db)
    appendDenied(outbox, 12)
    const a = outbox.claimBatch(6)
    const ra = a.records
    // the cloud refused rows 2 and 3 and 6 of the first claim, stored the rest
    const refused = [ra[1], ra[2], ra[5]].map((r) => ({ id: r?.id ?? '', reason: 'malformed: rssi' }))
    await outbox.recordSync(
      a,
      ra.filter((r) => !refused.some((x) => x.id === r.id)).map((r) => r.id),
      refused,
    )
    const inFlight = outbox.claimBatch(6)
    expect(outbox.resendRefused()).toBe(3)
    expect(outbox.counts()).toMatchObject({ pending: 3, inFlight: 6, synced: 3 })
    expect(listCheckins(db, { state: 'refused' })).toHaveLength(0)
    // claimed again: exactly the three, never a row of the claim still in flight
    const again = [outbox.claimBatch(10), outbox.claimBatch(10)].flatMap((c) =>
      c.records.map((r) => r.bootSeq),
    )
    expect(again).toEqual([2, 3, 6])
    expect(inFlight.records.map((r) => r.bootSeq)).toEqual([7, 8, 9, 10, 11, 12])
  })

  it('refuses new decisions, rather than queueing without end, while commits keep failing', () => {
    const db = openDatabase(file)
    const outbox = make(db)
    db.exec("CREATE TRIGGER boom BEFORE INSERT ON checkins BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    let refused = 0
    for (let i = 0; i < 10_050; i++) {
      try {
        outbox.append(draft(`ee${i.toString(16).padStart(6, '0')}`), () => {})
      } catch (err) {
        expect(isGateError(err, 'E_DB_WRITE')).toBe(true)
        refused++
      }
    }
    outbox.close()
    expect(outbox.queued()).toBe(10_000)
    expect(refused).toBe(50)
  })

  it('after a failed commit and its retry, the next decisions still commit at once', async () => {
    const db = openDatabase(file)
    const outbox = make(db)
    let emitted = 0
    db.exec("CREATE TRIGGER boom BEFORE INSERT ON checkins BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    outbox.append(draft('dd000101'), () => emitted++)
    await new Promise((r) => setImmediate(r)) // the commit fails; a retry is due in 500 ms
    expect(emitted).toBe(0)
    db.exec('DROP TRIGGER boom')
    await new Promise((r) => setTimeout(r, 600)) // the retry commits it
    expect(emitted).toBe(1)
    // a decision alone, nothing else scheduled: committed on the next turn, not a second later
    const t0 = performance.now()
    outbox.append(draft('dd000102'), () => emitted++)
    await new Promise((r) => setTimeout(r, 50))
    expect(emitted).toBe(2)
    expect(performance.now() - t0).toBeLessThan(200)
  })

  it('withholds decisions when the commit fails and keeps them for the next attempt', () => {
    const db = openDatabase(file)
    const outbox = make(db)
    let emitted = 0
    outbox.append(draft('dd000001'), () => emitted++)
    db.exec("CREATE TRIGGER boom BEFORE INSERT ON checkins BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    expect(() => outbox.flush()).toThrow(/outbox commit failed/)
    expect(emitted).toBe(0)
    expect(outbox.queued()).toBe(1)
    db.exec('DROP TRIGGER boom')
    outbox.flush()
    expect(emitted).toBe(1)
    expect(outbox.counts().pending).toBe(1)
  })
})

describe('outbox counts kept in memory', () => {
  it('match a full count through append, claim, ack, refusal, release, crash recovery and restart', async () => {
    const t = tempDir()
    try {
      const file = path.join(t.dir, 'agent.db')
      const db = openDatabase(file)
      const clock = new FakeClock()
      const mk = () =>
        new Outbox(db, {
          clock,
          log: silentLog,
          gateId: 'g',
          bootId: '0193a5b2-0000-7000-8000-000000000000',
          groupCommitDelayMs: 0,
        })
      let o = mk()
      // claims live in memory: on disk an in-flight row is pending
      const check = () => {
        const { oldestUnsyncedMs: _a, ...mem } = o.counts()
        const { oldestUnsyncedMs: _b, ...disk } = outboxCounts(db)
        expect({ unsynced: mem.pending + mem.inFlight, synced: mem.synced }).toEqual({
          unsynced: disk.pending,
          synced: disk.synced,
        })
      }
      appendDenied(o, 50)
      check()
      const a = o.claimBatch(15)
      const ra = a.records
      const b = o.claimBatch(5)
      check()
      // the cloud stores 10, refuses 1, and does not mention 4 (they go back to pending)
      await o.recordSync(
        a,
        ra.slice(0, 10).map((r) => r.id),
        [{ id: ra[10]?.id ?? '', reason: 'ts_in_future' }],
      )
      check()
      expect(o.counts()).toMatchObject({ pending: 34, inFlight: 5, synced: 11 })
      // a refused row is listed as such, with the cloud's reason; it is not "synced"
      expect(listCheckins(db, { state: 'refused' })).toEqual([
        expect.objectContaining({ id: ra[10]?.id, state: 'refused', syncError: 'ts_in_future' }),
      ])
      expect(listCheckins(db, { state: 'synced' })).toHaveLength(10)
      // unanswered rows are claimed again first; rows still in flight are never claimed twice
      expect(o.claimBatch(10).records.map((r) => r.bootSeq)).toEqual([12, 13, 14, 15])
      expect(o.claimBatch(10).records.map((r) => r.bootSeq)).toEqual([21, 22, 23, 24, 25, 26, 27, 28, 29, 30])
      o.release(b)
      expect(o.claimBatch(10).records.map((r) => r.bootSeq)).toEqual([16, 17, 18, 19, 20])
      check()
      o = mk() // a restart: counts come from the file, where nothing is in flight
      check()
      expect(o.counts()).toMatchObject({ pending: 39, inFlight: 0, synced: 11 })
      db.close()
    } finally {
      t.cleanup()
    }
  })
})

/**
 * A GateAgent on a push source in a fresh data directory. `synced` check-ins made `ageMs` ago are
 * written first (with `sql` run on the file after), as an earlier run of the agent would have left them.
 */
async function withAgent(
  opts: {
    config?: Record<string, unknown>
    synced?: { count: number; ageMs: number; sql?: string }
    log?: pino.Logger
    beforeStart?: ConstructorParameters<typeof GateAgent>[0]['beforeStart']
  },
  body: (agent: GateAgent, source: PushSource, dataDir: string) => Promise<void>,
): Promise<void> {
  const t = tempDir()
  try {
    const dataDir = path.join(t.dir, 'gate')
    const config = agentConfigSchema.parse({ gateId: 'g1', dataDir, source: { kind: 'sim' }, ...opts.config })
    if (opts.synced) {
      mkdirSync(dataDir, { recursive: true })
      const db = openDatabase(path.join(dataDir, 'agent.db'))
      const earlier = new Outbox(db, {
        clock: new FakeClock(Date.now() - opts.synced.ageMs),
        log: silentLog,
        gateId: 'g1',
        bootId: BOOT,
        groupCommitDelayMs: 0,
      })
      appendDenied(earlier, opts.synced.count)
      await recordAllStored(earlier, earlier.claimBatch(opts.synced.count))
      if (opts.synced.sql) db.exec(opts.synced.sql)
      db.close()
    }
    const source = new PushSource()
    const agent = new GateAgent({
      config,
      clock: systemClock,
      log: opts.log ?? silentLog,
      makeSource: () => source,
      ...(opts.beforeStart ? { beforeStart: opts.beforeStart } : {}),
    })
    await agent.start()
    try {
      await body(agent, source, dataDir)
    } finally {
      await agent.stop()
    }
  } finally {
    t.cleanup()
  }
}

describe('the agent prunes nothing inside the re-entry window', () => {
  it('with outbox.retentionDays 0, synced admits of the last minutes stay (a restart rebuilds re-entry from them)', async () => {
    await withAgent(
      {
        config: { outbox: { retentionDays: 0 }, dedup: { windowMs: 300_000 } },
        synced: { count: 3, ageMs: 60_000 },
      },
      async (agent) => {
        await new Promise((r) => setTimeout(r, 1_500)) // the first hourly prune has run
        expect(agent.status().buffer.synced).toBe(3)
      },
    )
  })
})

describe('a participant who comes back within the re-entry window', () => {
  it('is denied once as already checked in, and the record names them', async () => {
    const beforeStart = ({ roster }: { roster: RosterStore }) =>
      roster.importEntries([{ token: '00000000000000ab', participantId: 'P-B', status: 'active' }])
    await withAgent({ beforeStart }, async (agent, source) => {
      const decisions: string[] = []
      agent.pipelineForTests?.on('decision', (d) =>
        decisions.push(`${d.decision}:${d.reason ?? ''}:${d.participantId ?? ''}`),
      )
      const mfg = Buffer.concat([Buffer.from('ffffca11', 'hex'), Buffer.from('00000000000000ab', 'hex')])
      const heard = (rssi: number, n: number) => {
        for (let i = 0; i < n; i++)
          source.push({ address: 'c0:00:00:00:00:0a', rssi, manufacturerData: mfg, ts: systemClock.mono() })
      }
      heard(-50, 3)
      await eventually(() => decisions.length === 1, 3_000, 10)
      for (let visit = 0; visit < 2; visit++) {
        heard(-110, 20) // walks away
        heard(-50, 6) // and comes back
      }
      await eventually(() => decisions.length === 2, 3_000, 10)
      expect(decisions).toEqual(['admit::P-B', 'deny:already_checked_in:P-B'])
    })
  })
})

describe('a decision withheld for a failing disk', () => {
  it('is not remembered as made: the participant is admitted when the disk writes again', async () => {
    const beforeStart = ({ roster }: { roster: RosterStore }) =>
      roster.importEntries([{ token: '00000000000000aa', participantId: 'P-A', status: 'active' }])
    await withAgent({ beforeStart }, async (agent, source) => {
      const decisions: string[] = []
      agent.pipelineForTests?.on('decision', (d) => decisions.push(`${d.decision}:${d.reason ?? ''}`))
      const mfg = Buffer.concat([Buffer.from('ffffca11', 'hex'), Buffer.from('00000000000000aa', 'hex')])
      const heard = (rssi: number, n: number) => {
        for (let i = 0; i < n; i++)
          source.push({ address: 'c0:00:00:00:00:09', rssi, manufacturerData: mfg, ts: systemClock.mono() })
      }
      // the disk refuses the next decision
      const outbox = agent.outboxForTests as Outbox
      const append = outbox.append.bind(outbox)
      outbox.append = () => {
        throw new Error('disk full')
      }
      heard(-50, 3) // arrives: decided, withheld
      expect(agent.status().counters?.withheld).toBe(1)
      outbox.append = append
      heard(-110, 20) // walks away
      heard(-50, 6) // and comes back: admitted, not "already checked in"
      await eventually(() => decisions.length > 0, 3_000, 10)
      expect(decisions).toEqual(['admit:'])
    })
  })
})

describe('a decision that waits too long for a failing disk', () => {
  it('is dropped, not emitted when the disk comes back; the participant is admitted on the next arrival', async () => {
    const beforeStart = ({ roster }: { roster: RosterStore }) =>
      roster.importEntries([{ token: '00000000000000ab', participantId: 'P-B', status: 'active' }])
    // the file refuses new check-ins while the table `full` has a row (a full disk, as SQLite sees it)
    const sql = `CREATE TABLE full (x INTEGER);
      CREATE TRIGGER disk_full BEFORE INSERT ON checkins WHEN (SELECT count(*) FROM full) > 0
      BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
      INSERT INTO full VALUES (1);`
    await withAgent(
      { beforeStart, config: { outbox: { maxWaitMs: 300 } }, synced: { count: 0, ageMs: 0, sql } },
      async (agent, source, dataDir) => {
        const decisions: string[] = []
        agent.pipelineForTests?.on('decision', (d) => decisions.push(`${d.decision}:${d.reason ?? ''}`))
        const mfg = Buffer.concat([Buffer.from('ffffca11', 'hex'), Buffer.from('00000000000000ab', 'hex')])
        const heard = (rssi: number, n: number) => {
          for (let i = 0; i < n; i++)
            source.push({ address: 'c0:00:00:00:00:0a', rssi, manufacturerData: mfg, ts: systemClock.mono() })
        }
        heard(-50, 3) // arrives: decided, but the commit fails and the decision waits
        await eventually(() => (agent.status().counters?.withheld === 1 ? true : null), 5_000, 20)
        expect(agent.status().writes).toMatchObject({ failing: true, expired: 1, waiting: 0 })
        // the disk accepts writes again: the dropped decision must not open the turnstile now
        const file = new Database(path.join(dataDir, 'agent.db'))
        file.exec('DELETE FROM full')
        file.close()
        await new Promise((r) => setTimeout(r, 1_000)) // the outbox's retries (every 500 ms) have run
        expect(decisions).toEqual([])
        heard(-110, 20) // walks away
        heard(-50, 6) // and comes back: admitted, not "already checked in"
        await eventually(() => decisions.length > 0, 3_000, 10)
        expect(decisions).toEqual(['admit:'])
        expect(agent.status().writes?.failing).toBe(false)
      },
    )
  })
})

describe('the agent keeps running when housekeeping fails', () => {
  it('a prune that fails is logged and the agent goes on deciding', async () => {
    const errors: string[] = []
    // synced rows a month old, and a file that refuses to delete them (as a full or locked disk would)
    await withAgent(
      {
        synced: {
          count: 3,
          ageMs: 30 * 86_400_000,
          sql: "CREATE TRIGGER no_delete BEFORE DELETE ON checkins BEGIN SELECT RAISE(ABORT, 'disk full'); END",
        },
        log: pino({ level: 'error' }, { write: (line: string) => errors.push(line) }),
      },
      async (agent) => {
        // housekeeping runs every second; the first prune is due at once
        await new Promise((r) => setTimeout(r, 1_500))
        expect(errors.join('')).toMatch(/pruning old synced check-ins failed/)
        expect(agent.status().buffer.synced).toBe(3)
      },
    )
  })
})
