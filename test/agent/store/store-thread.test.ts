import { statSync } from 'node:fs'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Db, openDatabase } from '../../../agent/store/db.js'
import { StoreThread } from '../../../agent/store/store-thread.js'
import { silentLog, tempDir } from '../../support/helpers.js'
import { eventually } from '../../support/process-helpers.js'

describe('the store thread: WAL checkpoints off the event loop', () => {
  let t: ReturnType<typeof tempDir>
  let file: string
  let db: Db
  beforeEach(() => {
    t = tempDir()
    file = path.join(t.dir, 'agent.db')
    db = openDatabase(file)
    db.exec('CREATE TABLE filler (x BLOB)')
  })
  afterEach(() => {
    if (db.open) db.close()
    t.cleanup()
  })

  const write = (n: number) => {
    const ins = db.prepare('INSERT INTO filler VALUES (randomblob(4000))')
    for (let i = 0; i < n; i++) ins.run() // one commit each, as decisions are
  }

  it('without the worker (outbox.checkpoint: inline, the default) SQLite checkpoints and the WAL stays bounded', () => {
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000)
    write(3_000) // ~12 MB through the WAL, one commit each
    const wal = statSync(`${file}-wal`).size
    expect(wal).toBeLessThan(6 * 1024 * 1024) // ~1,000 pages of 4 KB and the frames of the last commits
    expect(statSync(file).size).toBeGreaterThan(8 * 1024 * 1024) // copied back into the database file
  })

  it('turns the commit-path checkpoint off and copies the WAL back from a worker thread', async () => {
    const cp = new StoreThread(db, file, silentLog, { checkpointMs: 50 })
    cp.start()
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0)
    const before = statSync(file).size
    write(300)
    // nothing in the commit path copies the WAL back any more: the worker does, and completes
    const runs = cp.stats.runs
    await eventually(
      () => cp.stats.runs > runs + 1 && cp.stats.walFrames > 0 && cp.stats.walFrames === cp.stats.backfilled,
      5_000,
      20,
    )
    expect(statSync(file).size - before).toBeGreaterThan(200 * 4000) // most of the 300 rows of ~4 KB
    await cp.stop()
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000)
    expect(cp.stats.errors).toBe(0)
  })

  it('gives the checkpoint back to SQLite when the worker dies, so the WAL stays bounded', async () => {
    const cp = new StoreThread(db, path.join(t.dir, 'no-such.db'), silentLog, { checkpointMs: 50 })
    cp.start() // the worker cannot open its connection and exits
    await eventually(() => db.pragma('wal_autocheckpoint', { simple: true }) === 1000, 5_000, 20)
    await cp.stop()
  })
})
