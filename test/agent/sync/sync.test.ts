import path from 'node:path'
import Database from 'better-sqlite3'
import type { FastifyInstance } from 'fastify'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GateAgent } from '../../../agent/agent.js'
import { PushSource } from '../../../agent/ble/push-source.js'
import { systemClock } from '../../../agent/clock.js'
import { type AgentConfig, agentConfigSchema } from '../../../agent/config/schema.js'
import { openDatabase } from '../../../agent/store/db.js'
import { Outbox } from '../../../agent/store/outbox.js'
import { listCheckins } from '../../../agent/store/outbox-queries.js'
import { RosterStore } from '../../../agent/store/roster-store.js'
import type { CloudClient, CloudOutcome } from '../../../agent/sync/cloud-client.js'
import { RosterPuller } from '../../../agent/sync/roster-puller.js'
import { Syncer } from '../../../agent/sync/syncer.js'
import { loadCloudConfig } from '../../../cloud/config.js'
import { createPool } from '../../../cloud/db/pool.js'
import { addGate } from '../../../cloud/gates/store.js'
import { buildApp } from '../../../cloud/http/app.js'
import { importParticipants } from '../../../cloud/participants/import.js'
import { maintainPartitions } from '../../../cloud/partitions/manager.js'
import type { Checkin } from '../../../shared/checkin.js'
import type { SyncResult } from '../../../shared/sync.js'
import { walkUp } from '../../support/badges.js'
import { silentLog, tempDir } from '../../support/helpers.js'
import { connect, tempDatabase } from '../../support/pg-helpers.js'
import { eventually } from '../../support/process-helpers.js'

const TOKENS = Array.from({ length: 40 }, (_, i) => (0x1000 + i).toString(16).padStart(8, '0'))

const mfgToken = (t: string) => t.padStart(16, '0')

describe('syncer and roster puller against the real cloud service', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let sql: pg.Client
  let app: FastifyInstance
  let url: string
  let port: number
  let key: string
  const tmp = tempDir()

  const startCloud = async (p = 0) => {
    const config = loadCloudConfig({ DATABASE_URL: db.url })
    app = await buildApp({ config, pool, log: silentLog })
    await app.listen({ host: '127.0.0.1', port: p })
    const addr = app.server.address()
    port = typeof addr === 'object' && addr ? addr.port : 0
    url = `http://127.0.0.1:${port}`
  }

  beforeAll(async () => {
    db = await tempDatabase()
    sql = await connect(db.url)
    await maintainPartitions(
      sql,
      { interval: 'month', premake: 1, retentionDays: null, dropDetached: true },
      new Date(),
    )
    pool = createPool(loadCloudConfig({ DATABASE_URL: db.url }))
    key = await addGate(pool, 'gate-s')
    await importParticipants(
      pool,
      TOKENS.map((t, i) => ({ token: mfgToken(t), participantId: `P-${i}`, status: 'active' as const })),
    )
    await startCloud()
  })
  afterAll(async () => {
    await app?.close()
    await pool?.end()
    await sql?.end()
    await db?.drop()
    tmp.cleanup()
  })

  const agentConfig = (dir: string, over: Record<string, unknown> = {}): AgentConfig =>
    agentConfigSchema.parse({
      gateId: 'gate-s',
      dataDir: path.join(tmp.dir, dir),
      source: { kind: 'sim' },
      cloud: {
        url,
        gateKey: key,
        syncIntervalMs: 200,
        rosterPullIntervalMs: 500,
        baseBackoffMs: 50,
        maxBackoffMs: 400,
        ...over,
      },
    })

  /** A started agent on a push source, configured against the test cloud. */
  const startAgent = async (config: AgentConfig) => {
    const source = new PushSource()
    const agent = new GateAgent({ config, clock: systemClock, log: silentLog, makeSource: () => source })
    await agent.start()
    return { agent, source }
  }

  it('pulls the roster, admits offline from it, and every decision reaches Postgres exactly once', async () => {
    const { agent, source } = await startAgent(agentConfig('a1'))
    try {
      await eventually(() => (agent.status().roster.active === TOKENS.length ? true : null), 10_000)
      for (const t of TOKENS.slice(0, 20)) walkUp(source, t)
      walkUp(source, 'deadbeef') // unknown: denied, and synced too
      await eventually(
        () => (agent.status().buffer.synced === 21 && agent.status().buffer.pending === 0 ? true : null),
        10_000,
      )
      const rows = await sql.query(
        `SELECT id, decision, reason FROM attendance_records WHERE gate_id = 'gate-s'`,
      )
      expect(rows.rows).toHaveLength(21)
      expect(rows.rows.filter((r) => r.decision === 'admit')).toHaveLength(20)
      expect(agent.status().sync).toMatchObject({ state: 'idle', accepted: 21, lastError: null })
      // the gate learns its clock offset from the cloud's answers (same machine here: about 0)
      expect(Math.abs(agent.status().sync?.clockOffsetMs ?? Number.NaN)).toBeLessThan(1_000)
      expect(agent.status().lastSync?.ok).toBe(true)
    } finally {
      await agent.stop()
    }
  })

  it('keeps admitting while the cloud is down, then drains the backlog when it is back', async () => {
    // batches of 2: the 20 buffered check-ins are ten batches, a backlog the store thread claims
    const { agent, source } = await startAgent(agentConfig('a2', { batchSize: 2 }))
    try {
      await eventually(() => (agent.status().roster.active === TOKENS.length ? true : null), 10_000)
      await app.close() // the cloud goes away
      for (const t of TOKENS.slice(20, 40)) walkUp(source, t)
      await eventually(() => ((agent.status().counters?.admit ?? 0) === 20 ? true : null), 5_000)
      await eventually(() => (agent.status().sync?.state === 'backoff' ? true : null), 5_000)
      expect(agent.status().sync?.lastError).toMatch(/unreachable|ECONNREFUSED/)
      // every check-in stays on the gate, pending. Batches go out on several lanes: one lane's
      // failure puts the syncer in backoff while another lane's batch may still be on its way to
      // the refused connection, so wait for those to come back rather than read the count at once
      await eventually(
        () => (agent.status().buffer.pending === 20 && agent.status().buffer.inFlight === 0 ? true : null),
        5_000,
      )
      expect(agent.status().buffer.synced).toBe(0)
      await startCloud(port) // back on the same address
      await eventually(
        () => (agent.status().buffer.synced === 20 && agent.status().buffer.inFlight === 0 ? true : null),
        10_000,
      )
      const n = await sql.query(`SELECT count(*)::int AS n FROM attendance_records WHERE gate_id = 'gate-s'`)
      expect(n.rows[0].n).toBe(41)
      // the backlog went through the store thread, which stopped once it was drained
      expect(agent.syncStatus().storeThread?.state).toBe('off')
      expect(agent.syncStatus().storeThread?.starts).toBeGreaterThanOrEqual(1)
    } finally {
      await agent.stop()
      // the tests after this one need the cloud, whatever happened here
      if (!app.server.listening) await startCloud(port)
    }
  })

  it('a badge revoked in the cloud is denied at the gate within one pull interval', async () => {
    const { agent, source } = await startAgent(agentConfig('a3', { rosterPullIntervalMs: 500 }))
    try {
      await eventually(() => (agent.status().roster.active === TOKENS.length ? true : null), 10_000)
      const t = TOKENS[5] as string
      await importParticipants(pool, [{ token: mfgToken(t), participantId: 'P-5', status: 'revoked' }])
      const t0 = Date.now()
      await eventually(() => (agent.status().roster.revoked === 1 ? true : null), 5_000)
      expect(Date.now() - t0).toBeLessThan(1_500)
      walkUp(source, t)
      await eventually(() => ((agent.status().counters?.deny['revoked'] ?? 0) === 1 ? true : null), 5_000)
    } finally {
      await agent.stop()
    }
  })

  it('after a crash mid-sync the batch is resent and counted as duplicates, never stored twice', async () => {
    // a gate whose outbox holds rows left in flight by a killed process
    const dir = path.join(tmp.dir, 'a4')
    const cfg = agentConfig('a4')
    const { agent: first, source } = await startAgent(cfg)
    await eventually(
      () => (first.status().roster.active + first.status().roster.revoked === TOKENS.length ? true : null),
      10_000,
    )
    for (const t of TOKENS.slice(0, 5)) walkUp(source, t)
    await eventually(
      () => (first.status().buffer.pending === 0 && first.status().buffer.synced === 5 ? true : null),
      10_000,
    )
    await first.stop()
    // simulate "sent, acknowledged by the cloud, but the gate died before marking": back to in flight
    const f = new Database(path.join(dir, 'agent.db'))
    f.prepare('UPDATE checkins SET state = 1').run()
    f.close()
    const { agent: second } = await startAgent(cfg)
    try {
      await eventually(
        () => (second.status().buffer.synced === 5 && second.status().buffer.pending === 0 ? true : null),
        10_000,
      )
      expect(second.status().sync).toMatchObject({ duplicates: 5, accepted: 0 })
    } finally {
      await second.stop()
    }
  })
})

describe('what the cloud refuses, against the real cloud service', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let app: FastifyInstance
  let url: string
  let key: string
  const tmp = tempDir()
  beforeAll(async () => {
    db = await tempDatabase()
    pool = createPool(loadCloudConfig({ DATABASE_URL: db.url }))
    key = await addGate(pool, 'gate-r')
    await importParticipants(
      pool,
      TOKENS.map((t, i) => ({ token: mfgToken(t), participantId: `P-${i}`, status: 'active' as const })),
    )
    app = await buildApp({ config: loadCloudConfig({ DATABASE_URL: db.url }), pool, log: silentLog })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const addr = app.server.address()
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`
  })
  afterAll(async () => {
    await app?.close()
    await pool?.end()
    await db?.drop()
    tmp.cleanup()
  })

  it('a record the cloud refuses as malformed is kept on the gate and does not hold back the others', async () => {
    const config = agentConfigSchema.parse({
      gateId: 'gate-r',
      dataDir: path.join(tmp.dir, 'r1'),
      source: { kind: 'sim' },
      cloud: {
        url,
        gateKey: key,
        syncIntervalMs: 100,
        rosterPullIntervalMs: 500,
        baseBackoffMs: 50,
        maxBackoffMs: 400,
      },
    })
    const source = new PushSource()
    const agent = new GateAgent({ config, clock: systemClock, log: silentLog, makeSource: () => source })
    await agent.start()
    try {
      await eventually(() => (agent.status().roster.active === TOKENS.length ? true : null), 10_000)
      // an advert without RSSI (HCI's 127, "not available") says nothing of where the badge is: no check-in
      const mfg = Buffer.concat([
        Buffer.from('ffffca11', 'hex'),
        Buffer.from(mfgToken(TOKENS[30] as string), 'hex'),
      ])
      for (let i = 0; i < 5; i++)
        source.push({
          address: 'c0:00:00:00:00:02',
          rssi: 127,
          manufacturerData: mfg,
          ts: systemClock.mono(),
        })
      // a record the cloud will refuse (as an older build could have buffered it), then four good ones
      const outbox = agent.outboxForTests as Outbox
      const bad = outbox.append(
        {
          token: mfgToken(TOKENS[31] as string),
          participantId: 'P-31',
          decision: 'admit',
          reason: null,
          rssi: 127,
          rosterVersion: 1,
          monoMs: 0,
        },
        () => {},
      )
      for (const t of TOKENS.slice(32, 36)) walkUp(source, t)
      await eventually(
        () => (agent.status().buffer.synced === 5 && agent.status().buffer.pending === 0 ? true : null),
        10_000,
      )
      expect(agent.status().counters?.adverts).toBe(5 + 4 * 3)
      expect(agent.status().counters?.admit).toBe(4)
      expect(agent.status().sync).toMatchObject({ rejected: 1, accepted: 4 })
      const stored = await pool.query(`SELECT id, rssi FROM attendance_records WHERE gate_id = 'gate-r'`)
      expect(stored.rows).toHaveLength(4)
      expect(stored.rows.map((r) => r.id)).not.toContain(bad.id)
      const file = new Database(path.join(config.dataDir, 'agent.db'), { readonly: true })
      const refused = listCheckins(file, { state: 'refused' })
      file.close()
      expect(refused).toEqual([
        expect.objectContaining({ id: bad.id, syncError: expect.stringMatching(/rssi/) }),
      ])
    } finally {
      await agent.stop()
    }
  })
})

describe('syncer behaviour with a scripted cloud (fakes behind the CloudClient port)', () => {
  const tmp = tempDir()
  afterAll(() => tmp.cleanup())

  function setup(
    script: Array<(records: readonly Checkin[]) => CloudOutcome<SyncResult>>,
    maxBackoffMs = 200,
    opts: { rows?: number; concurrency?: number; yieldNow?: () => boolean; callMs?: number } = {},
  ) {
    const db = openDatabase(path.join(tmp.dir, `s-${Math.random().toString(36).slice(2)}.db`))
    const outbox = new Outbox(db, {
      clock: systemClock,
      log: silentLog,
      gateId: 'g',
      bootId: '0193a5b2-0000-7000-8000-000000000000',
      groupCommitDelayMs: 0,
    })
    for (let i = 0; i < (opts.rows ?? 10); i++) {
      outbox.append(
        {
          token: `000${i}aaaa`,
          participantId: `P${i}`,
          decision: 'admit',
          reason: null,
          rssi: -50,
          rosterVersion: 1,
          monoMs: i,
        },
        () => {},
      )
    }
    outbox.flush()
    const calls: number[] = []
    const wire = { now: 0, max: 0 }
    const client: CloudClient = {
      sendBatch: async (_g, _s, json) => {
        const records = JSON.parse(
          typeof json === 'string' ? json : Buffer.from(json).toString(),
        ) as Checkin[]
        calls.push(records.length)
        wire.max = Math.max(wire.max, ++wire.now)
        await new Promise((r) => setTimeout(r, opts.callMs ?? 0))
        wire.now--
        const step = script.shift()
        if (!step)
          return {
            ok: true,
            value: {
              accepted: records.length,
              duplicates: 0,
              rejected: [],
              stored: records.map((r) => r.id),
              serverTime: Date.now(),
            },
          }
        return step(records)
      },
      fetchRoster: async () => ({ ok: true, value: { delta: null, etag: null } }),
      fetchPolicy: async () => ({ ok: true, value: { changed: false, policy: null, etag: null } }),
      sendTallies: async () => ({ ok: true, value: { policyVersion: 0, allotments: {}, occupancy: {} } }),
    }
    const syncer = new Syncer({
      db,
      outbox,
      client,
      clock: systemClock,
      log: silentLog,
      gateId: 'g',
      config: {
        batchSize: 4,
        concurrency: opts.concurrency ?? 1,
        intervalMs: 50,
        baseBackoffMs: 20,
        maxBackoffMs,
      },
      random: () => 0.5,
      ...(opts.yieldNow ? { yieldNow: opts.yieldNow } : {}),
    })
    return { db, outbox, syncer, calls, wire }
  }

  it('honours Retry-After, halves the batch on 413, and marks only what the cloud stored', async () => {
    const t0 = Date.now()
    const { outbox, syncer, calls, db } = setup([
      () => ({ ok: false, kind: 'retry', message: '503', retryAfterMs: 300 }),
      () => ({ ok: false, kind: 'too-large', message: '413' }),
      (records) => ({
        ok: true,
        value: {
          accepted: 1,
          duplicates: 0,
          rejected: [{ id: records[1]?.id ?? '', reason: 'ts_in_future' }],
          stored: [records[0]?.id ?? ''],
          serverTime: 0,
        },
      }),
    ])
    syncer.start()
    await eventually(
      () => (outbox.counts().pending === 0 && outbox.counts().inFlight === 0 ? true : null),
      5_000,
    )
    await syncer.stop()
    expect(calls[0]).toBe(4)
    expect(calls[1]).toBe(4)
    expect(calls[2]).toBe(2) // halved after 413
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300) // waited for Retry-After
    const rejected = db.prepare('SELECT count(*) AS n FROM checkins WHERE sync_error IS NOT NULL').get() as {
      n: number
    }
    expect(rejected.n).toBe(1)
    expect(outbox.counts().synced).toBe(10)
    db.close()
  })

  it('a backlog drain sends one batch at a time while decisions commit slowly, all lanes otherwise', async () => {
    const drain = async (slow: { on: boolean }) => {
      const run = setup([], 200, { rows: 200, concurrency: 4, callMs: 15, yieldNow: () => slow.on })
      run.syncer.start()
      await eventually(() => (run.outbox.counts().synced === 200 ? true : null), 10_000)
      // the held-back lanes end with the backlog although the disk is still slow: the pass is over
      await eventually(() => (run.syncer.status().yielding ? null : true), 2_000)
      const status = run.syncer.status()
      await run.syncer.stop()
      run.db.close()
      return { maxOnWire: run.wire.max, status }
    }
    const contended = await drain({ on: true })
    expect(contended.maxOnWire).toBe(1)
    expect(contended.status.yields).toBeGreaterThanOrEqual(1)
    const free = await drain({ on: false })
    expect(free.maxOnWire).toBe(4)
    expect(free.status.yields).toBe(0)
  })

  it('yields only while commits are slow: the lanes come back when the disk does', async () => {
    const slow = { on: true }
    const run = setup([], 200, { rows: 400, concurrency: 4, callMs: 10, yieldNow: () => slow.on })
    run.syncer.start()
    await eventually(() => (run.syncer.status().yielding ? true : null), 5_000)
    expect(run.wire.max).toBe(1)
    slow.on = false
    await eventually(() => (run.outbox.counts().synced === 400 ? true : null), 10_000)
    expect(run.wire.max).toBeGreaterThan(1)
    await run.syncer.stop()
    run.db.close()
  })

  const malformed = (problems: Array<{ index: number; message: string }>): CloudOutcome<SyncResult> => ({
    ok: false,
    kind: 'refused',
    status: 400,
    message: '400 malformed',
    problems,
  })

  it('a 400 naming a record keeps that record refused and sends the rest; resend-refused sends it again', async () => {
    const { outbox, syncer, db } = setup([() => malformed([{ index: 1, message: 'rssi: too big' }])])
    syncer.start()
    await eventually(() => (outbox.counts().synced === 10 ? true : null), 5_000)
    const refused = listCheckins(db, { state: 'refused' })
    expect(refused).toEqual([expect.objectContaining({ bootSeq: 2, syncError: 'malformed: rssi: too big' })])
    expect(syncer.status().rejected).toBe(1)
    expect(outbox.resendRefused()).toBe(1)
    await eventually(() => (listCheckins(db, { state: 'synced' }).length === 10 ? true : null), 5_000)
    await syncer.stop()
    db.close()
  })

  it('a 400 that names no record halves the batch down to the record at fault', async () => {
    const bad = (records: readonly Checkin[]) => records.some((r) => r.bootSeq === 7)
    const { outbox, syncer, db, calls } = setup(
      Array.from({ length: 20 }, () => (records: readonly Checkin[]) => {
        if (bad(records)) return { ...malformed([]) }
        const ids = records.map((r) => r.id)
        return {
          ok: true,
          value: { accepted: ids.length, duplicates: 0, rejected: [], stored: ids, serverTime: 0 },
        }
      }),
    )
    syncer.start()
    await eventually(() => (outbox.counts().synced === 10 ? true : null), 5_000)
    await syncer.stop()
    expect(listCheckins(db, { state: 'refused' }).map((r) => r.bootSeq)).toEqual([7])
    expect(calls.length).toBeLessThan(12)
    db.close()
  })

  it('other 4xx answers are retried later, never taken as a verdict on the records', async () => {
    const { outbox, syncer, db } = setup([
      () => ({ ok: false, kind: 'refused', status: 404, message: '404 not found', problems: [] }),
    ])
    syncer.start()
    await eventually(() => (outbox.counts().synced === 10 ? true : null), 5_000)
    await syncer.stop()
    expect(listCheckins(db, { state: 'refused' })).toHaveLength(0)
    db.close()
  })

  it('backs off when even one record is too large, instead of resending it in a loop', async () => {
    const { syncer, calls, db } = setup(
      Array.from({ length: 500 }, () => () => ({
        ok: false as const,
        kind: 'too-large' as const,
        message: '413',
      })),
    )
    syncer.start()
    await new Promise((r) => setTimeout(r, 600))
    await syncer.stop()
    // 4 -> 2 -> 1 record, then backing off 20, 40, 80, 160, 200 ms ...
    expect(calls.slice(0, 3)).toEqual([4, 2, 1])
    expect(calls.length).toBeLessThan(15)
    db.close()
  })

  it('a client that throws gives its rows back: they are sent later, not left in flight', async () => {
    const { outbox, syncer, db } = setup([
      () => {
        throw new Error('socket hang up')
      },
    ])
    syncer.start()
    await eventually(() => (outbox.counts().synced === 10 ? true : null), 5_000)
    expect(outbox.counts().inFlight).toBe(0)
    await syncer.stop()
    db.close()
  })

  it('the roster puller waits as long as Retry-After says', async () => {
    const db = openDatabase(path.join(tmp.dir, `p-${Math.random().toString(36).slice(2)}.db`))
    const pulls: number[] = []
    const client: CloudClient = {
      sendBatch: async () => ({ ok: false, kind: 'retry', message: 'unused' }),
      fetchRoster: async () => {
        pulls.push(Date.now())
        return pulls.length === 1
          ? { ok: false, kind: 'retry', message: '429', retryAfterMs: 400 }
          : { ok: true, value: { delta: null, etag: null } }
      },
      fetchPolicy: async () => ({ ok: true, value: { changed: false, policy: null, etag: null } }),
      sendTallies: async () => ({ ok: true, value: { policyVersion: 0, allotments: {}, occupancy: {} } }),
    }
    const puller = new RosterPuller({
      roster: new RosterStore(db, systemClock),
      client,
      clock: systemClock,
      log: silentLog,
      intervalMs: 5_000,
      maxBackoffMs: 10_000,
    })
    puller.start()
    await eventually(() => (pulls.length === 2 ? true : null), 3_000)
    await puller.stop()
    expect((pulls[1] ?? 0) - (pulls[0] ?? 0)).toBeGreaterThanOrEqual(390)
    db.close()
  })

  it('stops hammering a cloud that refuses the key, and keeps the rows', async () => {
    const { outbox, syncer, calls, db } = setup(
      Array.from({ length: 10 }, () => () => ({ ok: false as const, kind: 'auth' as const, message: '401' })),
      5_000,
    )
    syncer.start()
    await eventually(() => (syncer.status().state === 'auth-failed' ? true : null), 2_000)
    await new Promise((r) => setTimeout(r, 150))
    expect(calls).toHaveLength(1) // the next try waits maxBackoffMs
    expect(outbox.counts().pending).toBe(10)
    await syncer.stop()
    db.close()
  })
})
