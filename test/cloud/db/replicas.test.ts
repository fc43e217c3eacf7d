import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ReadRouter } from '../../../cloud/db/replicas.js'
import { silentLog } from '../../support/helpers.js'
import { startReplicaPair } from '../../support/pg-replica.js'
import { eventually } from '../../support/process-helpers.js'

describe('analytics reads on a streaming replica', () => {
  let pair: Awaited<ReturnType<typeof startReplicaPair>>
  let primary: pg.Pool
  let reads: ReadRouter
  beforeAll(async () => {
    pair = await startReplicaPair()
    primary = new pg.Pool({ connectionString: pair.primaryUrl })
    await primary.query('CREATE TABLE t (n int)')
    await primary.query('INSERT INTO t VALUES (1)')
    reads = new ReadRouter(primary, [pair.replicaUrl], {
      maxLagMs: 500,
      checkIntervalMs: 100,
      readYourWritesMs: 300,
      poolMax: 4,
      statementTimeoutMs: 5_000,
      log: silentLog,
    })
    await reads.start()
  }, 60_000)
  afterAll(async () => {
    await reads?.stop()
    await primary?.end()
    pair?.stop()
  })

  const where = async (about: { gateId?: string } = {}) => {
    const r = await reads.query<{ recovery: boolean }>('SELECT pg_is_in_recovery() AS recovery', [], about)
    expect(r.rows[0]?.recovery).toBe(r.target !== 'primary') // the target named is the server that answered
    return r.target
  }

  it('reads from the replica, but a gate that just wrote reads from the primary', async () => {
    await eventually(async () => (await where()) === 'replica:0', 10_000, 20)
    reads.noteWrite('gate-1')
    expect(await where({ gateId: 'gate-1' })).toBe('primary')
    expect(await where({ gateId: 'gate-2' })).toBe('replica:0')
    await new Promise((r) => setTimeout(r, 350))
    expect(await where({ gateId: 'gate-1' })).toBe('replica:0')
  })

  it('stops reading from a replica that lags beyond the setting, and comes back to it', async () => {
    const rep = new pg.Client({ connectionString: pair.replicaUrl })
    await rep.connect()
    try {
      await rep.query('SELECT pg_wal_replay_pause()')
      await primary.query('INSERT INTO t VALUES (2)')
      await eventually(() => reads.status()[0]?.eligible === false, 10_000, 20)
      expect(await where()).toBe('primary')
      await rep.query('SELECT pg_wal_replay_resume()')
      await eventually(() => reads.status()[0]?.eligible === true, 10_000, 20)
      expect(await where()).toBe('replica:0')
    } finally {
      await rep.end()
    }
  })

  it('a replica cut off from its primary is not taken as current, and is read again once it catches up', async () => {
    const rep = new pg.Client({ connectionString: pair.replicaUrl })
    await rep.connect()
    try {
      const conninfo = (await rep.query<{ c: string }>(`SELECT current_setting('primary_conninfo') AS c`))
        .rows[0]?.c
      expect(conninfo).toMatch(/port=/)
      // its WAL receiver now points nowhere: it has replayed all it received, and receives nothing more
      await rep.query(`ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 connect_timeout=1'`)
      await rep.query('SELECT pg_reload_conf()')
      await new Promise((r) => setTimeout(r, 500))
      await primary.query('INSERT INTO t VALUES (3)')
      await eventually(() => reads.status()[0]?.eligible === false, 10_000, 20)
      expect(await where()).toBe('primary')
      await rep.query(`ALTER SYSTEM SET primary_conninfo = '${(conninfo ?? '').replaceAll("'", "''")}'`)
      await rep.query('SELECT pg_reload_conf()')
      await eventually(() => reads.status()[0]?.eligible === true, 20_000, 20)
      expect(await where()).toBe('replica:0')
    } finally {
      await rep.end()
    }
  }, 40_000)

  it('answers from the primary when the replica is down, without an error', async () => {
    pair.stopReplica()
    for (let i = 0; i < 10; i++) expect(await where()).toBe('primary')
    pair.startReplica()
    await eventually(async () => (await where()) === 'replica:0', 20_000, 20)
  }, 30_000)
})
