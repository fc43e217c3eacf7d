import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FakeClock } from '../../../agent/clock.js'
import { CLAIM_QUERIES, RECORD_SLICE } from '../../../agent/store/claims.js'
import { type Db, openDatabase } from '../../../agent/store/db.js'
import { Outbox } from '../../../agent/store/outbox.js'
import { outboxCounts } from '../../../agent/store/outbox-queries.js'
import { StoreThread } from '../../../agent/store/store-thread.js'
import { appendDenied, recordAllStored, silentLog, tempDir } from '../../support/helpers.js'
import { eventually } from '../../support/process-helpers.js'

const BOOT = '0193f9a0-0000-4000-8000-000000000002'

/** What the outbox does while a large backlog drains: claims off the event loop, answers recorded in slices. */
describe('outbox during a backlog drain', () => {
  let t: ReturnType<typeof tempDir>
  let file: string
  let db: Db
  let thread: StoreThread
  const clock = new FakeClock()
  beforeEach(() => {
    t = tempDir()
    file = path.join(t.dir, 'agent.db')
    db = openDatabase(file)
    thread = new StoreThread(db, file, silentLog, { queries: CLAIM_QUERIES })
  })
  afterEach(async () => {
    await thread.stop()
    if (db.open) db.close()
    t.cleanup()
  })

  const make = (over: { thread?: StoreThread } = { thread }) =>
    new Outbox(db, { clock, log: silentLog, gateId: 'g1', bootId: BOOT, groupCommitDelayMs: 0, ...over })

  it('starts the store thread for a backlog, claims every row once in order, and stops it when the backlog is gone', async () => {
    const outbox = make()
    appendDenied(outbox, 2_500)
    expect(thread.running).toBe(false)
    const seen: number[] = []
    // fewer than ten batches pending: the main thread claims, no thread is started
    const small = make()
    expect((await small.claim(1_000)).count).toBe(1_000)
    expect(thread.running).toBe(false)
    // ten batches or more: the thread starts, with SQLite's commit-path checkpoint off meanwhile
    for (;;) {
      const c = await outbox.claim(200)
      if (c.count === 0) break
      if (seen.length === 0) {
        expect(thread.running).toBe(true)
        expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0)
      }
      seen.push(...c.records.map((r) => r.bootSeq))
      await recordAllStored(outbox, c)
    }
    expect(seen).toEqual(Array.from({ length: 2_500 }, (_, i) => i + 1))
    expect(thread.stats.reads).toBeGreaterThanOrEqual(13) // 12 full claims and the short one
    // the short claim ended the backlog: the thread is gone and SQLite checkpoints again
    await eventually(() => !thread.running, 5_000, 10)
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000)
    expect(outbox.counts()).toMatchObject({ pending: 0, inFlight: 0, synced: 2_500 })
    expect(outboxCounts(db)).toMatchObject({ pending: 0, inFlight: 0, synced: 2_500 })
  })

  it('claims on the main thread when the store thread cannot run', async () => {
    const broken = new StoreThread(db, path.join(t.dir, 'no-such.db'), silentLog, { queries: CLAIM_QUERIES })
    const outbox = make({ thread: broken })
    appendDenied(outbox, 500)
    const got: number[] = []
    for (;;) {
      const c = await outbox.claim(20)
      if (c.count === 0) break
      got.push(...c.records.map((r) => r.bootSeq))
      outbox.release(c) // released rows are claimed again first...
      const again = await outbox.claim(20)
      expect(again.records.map((r) => r.bootSeq)).toEqual(c.records.map((r) => r.bootSeq))
      await recordAllStored(outbox, again)
    }
    expect(got).toEqual(Array.from({ length: 500 }, (_, i) => i + 1)) // ...and nothing is lost or repeated
    expect(broken.running).toBe(false)
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000)
    await broken.stop()
  })

  it('records a large answer slice by slice: a decision made meanwhile is committed between slices', async () => {
    const outbox = make({})
    appendDenied(outbox, 1_000)
    const c = outbox.claimBatch(1_000)
    const recorded = recordAllStored(outbox, c)
    let durableWhileRecording = false
    let done = false
    void recorded.then(() => {
      done = true
    })
    // a decision made now is committed after the first slice, not after all four
    outbox.append(
      {
        token: 'live0001',
        participantId: 'P9',
        decision: 'admit',
        reason: null,
        rssi: -50,
        rosterVersion: 1,
        monoMs: 1,
      },
      () => {
        durableWhileRecording = !done
      },
    )
    expect(await recorded).toEqual({ synced: 1_000, refused: 0 })
    expect(durableWhileRecording).toBe(true)
    expect(outbox.counts()).toMatchObject({ pending: 1, inFlight: 0, synced: 1_000 })
  })

  it('records a partial answer across slices: stored rows synced, refused kept, unmentioned claimed again', async () => {
    const outbox = make({})
    appendDenied(outbox, 1_000)
    const c = outbox.claimBatch(1_000)
    const rows = c.records
    // the cloud stored every other row, refused the last one, and did not mention the rest
    const stored = rows.filter((_, i) => i % 2 === 0).map((r) => r.id)
    const last = rows[999]?.id ?? ''
    expect(await outbox.recordSync(c, stored, [{ id: last, reason: 'ts_in_future' }])).toEqual({
      synced: 500,
      refused: 1,
    })
    expect(outbox.counts()).toMatchObject({ pending: 499, inFlight: 0, synced: 501 })
    expect(outboxCounts(db)).toMatchObject({ pending: 499, inFlight: 0, synced: 501 })
    const again = outbox.claimBatch(1_000)
    expect(again.records.map((r) => r.bootSeq)).toEqual(
      rows.filter((_, i) => i % 2 === 1 && i !== 999).map((r) => r.bootSeq),
    )
  })

  it('records answers of concurrent lanes one after another, every row once', async () => {
    const outbox = make({})
    appendDenied(outbox, 2_000)
    const a = outbox.claimBatch(1_000)
    const b = outbox.claimBatch(1_000)
    // when a's answer is recorded, none of b's slices has run: one slice per turn of the event loop
    let syncedWhenADone = 0
    const ra = recordAllStored(outbox, a).then(() => {
      syncedWhenADone = outboxCounts(db).synced
    })
    const rb = recordAllStored(outbox, b)
    await Promise.all([ra, rb])
    expect(syncedWhenADone).toBe(1_000)
    expect(outboxCounts(db)).toMatchObject({ pending: 0, inFlight: 0, synced: 2_000 })
    // an answer for a claim already recorded changes nothing
    expect(await recordAllStored(outbox, a)).toEqual({ synced: 0, refused: 0 })
  })

  it('stops recording between slices when the database closes: the rest is pending on disk', async () => {
    const outbox = make({})
    appendDenied(outbox, 1_000)
    const c = outbox.claimBatch(1_000)
    const recorded = recordAllStored(outbox, c)
    await new Promise((r) => setImmediate(r)) // the first slice is committed
    db.close() // the agent stopping mid-answer
    expect(await recorded).toEqual({ synced: RECORD_SLICE, refused: 0 })
    db = openDatabase(file)
    expect(outboxCounts(db)).toMatchObject({ pending: 1_000 - RECORD_SLICE, synced: RECORD_SLICE })
  })
})
