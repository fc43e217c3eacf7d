import { once } from 'node:events'
import net from 'node:net'
import { gzipSync } from 'node:zlib'
import type { FastifyInstance } from 'fastify'
import type pg from 'pg'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { v7 as uuidv7 } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cacheDefaults, TieredCache } from '../../../cloud/cache/tiered-cache.js'
import { warmCache } from '../../../cloud/cache/warm.js'
import { loadCloudConfig } from '../../../cloud/config.js'
import { createPool } from '../../../cloud/db/pool.js'
import { addGate, revokeGate, rotateKey } from '../../../cloud/gates/store.js'
import { buildApp } from '../../../cloud/http/app.js'
import { RosterIndex } from '../../../cloud/ingest/roster-index.js'
import { importParticipants } from '../../../cloud/participants/import.js'
import { maintainPartitions } from '../../../cloud/partitions/manager.js'
import type { Checkin } from '../../../shared/checkin.js'
import { silentLog } from '../../support/helpers.js'
import { connect, tempDatabase } from '../../support/pg-helpers.js'
import { eventually } from '../../support/process-helpers.js'

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0)
const OPS = 'ops-token-for-tests-0123456789'

describe('gate-cloud HTTP API on real Postgres', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let app: FastifyInstance
  let keyA: string
  let keyB: string
  let sql: pg.Client
  const boot = uuidv7()
  let seq = 0

  const rec = (gateId: string, over: Partial<Checkin> = {}): Checkin => ({
    id: uuidv7(),
    gateId,
    token: '0001aaaa',
    participantId: 'P-1',
    method: 'ble',
    decision: 'admit',
    reason: null,
    rssi: -58,
    ts: NOW - 60_000,
    monoMs: 1234.5,
    bootId: boot,
    bootSeq: ++seq,
    rosterVersion: 3,
    ...over,
  })
  const send = (key: string, body: unknown, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'POST',
      url: '/v1/sync/checkins',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      payload: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    })
  const count = async () =>
    Number((await sql.query('SELECT count(*) AS n FROM attendance_records')).rows[0].n)
  const ops = (url: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${OPS}` } })

  beforeAll(async () => {
    db = await tempDatabase()
    sql = await connect(db.url)
    const config = loadCloudConfig({ DATABASE_URL: db.url, OPS_TOKEN: OPS, MAX_BODY_BYTES: '200000' })
    await maintainPartitions(
      sql,
      { interval: 'month', premake: 1, retentionDays: null, dropDetached: true },
      new Date(NOW),
    )
    pool = createPool(config)
    app = await buildApp({ config, pool, log: silentLog, now: () => NOW, authCacheMs: 1 })
    keyA = await addGate(pool, 'gate-a')
    keyB = await addGate(pool, 'gate-b')
    await importParticipants(pool, [
      {
        token: '0001aaaa',
        participantId: 'P-1',
        status: 'active',
        name: 'Ada Lovelace',
        email: 'ada@example.org',
      },
      {
        token: '0002bbbb',
        participantId: 'P-2',
        status: 'active',
        name: 'Grace Hopper',
        email: 'grace@example.org',
      },
    ])
  })
  afterAll(async () => {
    await app?.close()
    await pool?.end()
    await sql?.end()
    await db?.drop()
  })

  it('answers health and readiness', async () => {
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200)
    expect((await app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready' })
  })

  it('refuses a batch without a key or with a wrong one', async () => {
    const body = { gateId: 'gate-a', sentAt: NOW, records: [rec('gate-a')] }
    const none = await app.inject({ method: 'POST', url: '/v1/sync/checkins', payload: body })
    expect(none.statusCode).toBe(401)
    const wrong = await send(`${keyA.slice(0, -4)}AAAA`, body)
    expect(wrong.statusCode).toBe(401)
    expect(wrong.json().error.code).toBe('E_AUTH')
    expect(await count()).toBe(0)
  })

  it('stores a batch once: a resent batch is all duplicates, never an error', async () => {
    const records = [
      rec('gate-a'),
      rec('gate-a', { decision: 'deny', reason: 'unknown', participantId: null, token: 'ffff0000' }),
    ]
    const first = await send(keyA, { gateId: 'gate-a', sentAt: NOW, records })
    expect(first.statusCode).toBe(200)
    expect(first.json()).toMatchObject({ accepted: 2, duplicates: 0, rejected: [] })
    expect(first.json().stored.sort()).toEqual(records.map((r) => r.id).sort())
    const again = await send(keyA, {
      gateId: 'gate-a',
      sentAt: NOW,
      records: [...records, rec('gate-a', { participantId: 'P-2', token: '0002bbbb' })],
    })
    expect(again.json()).toMatchObject({ accepted: 1, duplicates: 2 })
    expect(await count()).toBe(3)
    const row = await sql.query(
      'SELECT gate_id, participant_id, decision, boot_seq, received_at FROM attendance_records WHERE id = $1',
      [records[0]?.id],
    )
    expect(row.rows[0]).toMatchObject({
      gate_id: 'gate-a',
      participant_id: 'P-1',
      decision: 'admit',
      boot_seq: String(records[0]?.bootSeq),
    })
    expect(row.rows[0].received_at).toBeInstanceOf(Date)
  })

  it('stores every field as sent, whatever characters its text holds, and a record named twice in one batch once', async () => {
    const odd = rec('gate-a', {
      participantId: 'P\t1\\x\ny\r',
      token: 'to\\ken\t',
      monoMs: 0.125,
      rssi: -127,
    })
    const first = await send(keyA, { gateId: 'gate-a', sentAt: NOW, records: [odd] })
    expect(first.json()).toMatchObject({ accepted: 1, duplicates: 0 })
    const row = (
      await sql.query(
        'SELECT participant_id, token, mono_ms, rssi, ts, boot_id, boot_seq, gate_id FROM attendance_records WHERE id = $1',
        [odd.id],
      )
    ).rows[0]
    expect(row).toMatchObject({
      participant_id: odd.participantId,
      token: odd.token,
      mono_ms: 0.125,
      rssi: -127,
      boot_id: odd.bootId,
      boot_seq: String(odd.bootSeq),
      gate_id: 'gate-a',
    })
    expect(row.ts.getTime()).toBe(odd.ts)
    // the bulk path refuses the repeated key; the batch is then stored record by record, once each
    const twice = rec('gate-a', { participantId: 'P-2', token: '0002bbbb' })
    const again = await send(keyA, { gateId: 'gate-a', sentAt: NOW, records: [twice, twice, rec('gate-a')] })
    expect(again.json()).toMatchObject({ accepted: 2, duplicates: 1 })
    const n = await sql.query('SELECT count(*)::int AS n FROM attendance_records WHERE id = $1', [twice.id])
    expect(n.rows[0].n).toBe(1)
  })

  it('stores a check-in id once whatever its time: a resend with another time or content is refused by name and reported, an identical one stays a duplicate', async () => {
    const refusedCount = async () => {
      const text = (await app.inject({ url: '/metrics' })).body
      return Number(/^ingest_records_refused_total\{reason="id_conflict"\} (\d+)$/m.exec(text)?.[1] ?? 0)
    }
    const stored = async (id: string) =>
      (await sql.query('SELECT ts, rssi, gate_id FROM attendance_records WHERE id = $1', [id])).rows
    const openConflicts = async (gateId: string) =>
      (
        await sql.query(
          `SELECT detail, other_gate_id FROM incidents WHERE kind = 'id_conflict' AND gate_id = $1 AND resolved_at IS NULL`,
          [gateId],
        )
      ).rows
    const counted = await refusedCount()
    const first = rec('gate-a', { ts: NOW - 50_000 })
    expect((await send(keyA, { gateId: 'gate-a', sentAt: NOW, records: [first] })).json()).toMatchObject({
      accepted: 1,
    })
    // a gate resending after a crash mid-sync: a duplicate, nothing to report
    expect((await send(keyA, { gateId: 'gate-a', sentAt: NOW, records: [first] })).json()).toMatchObject({
      accepted: 0,
      duplicates: 1,
    })
    expect(await openConflicts('gate-a')).toEqual([])

    // the same id with another time (the primary key is (id, ts)), or the same time and other content
    const other = rec('gate-a')
    const changed = [
      { ...first, ts: first.ts + 5_000 },
      { ...first, participantId: 'P-2', token: '0002bbbb', rssi: -90 },
    ]
    for (const c of changed) {
      const res = await send(keyA, { gateId: 'gate-a', sentAt: NOW, records: [other, c] })
      expect(res.statusCode).toBe(400)
      // named by its index: the gate keeps it as refused and sends the rest again
      expect(res.json().error.details).toEqual([
        { index: 1, path: 'id', message: expect.stringContaining(first.id) },
      ])
    }
    expect(await stored(first.id)).toEqual([{ ts: new Date(first.ts), rssi: first.rssi, gate_id: 'gate-a' }])
    expect(await stored(other.id)).toEqual([]) // nothing of a refused batch
    expect((await send(keyA, { gateId: 'gate-a', sentAt: NOW, records: [other] })).json()).toMatchObject({
      accepted: 1,
    })
    // twice in one batch with other times: refused, the first of them goes in when resent alone
    const twin = rec('gate-a')
    const both = await send(keyA, {
      gateId: 'gate-a',
      sentAt: NOW,
      records: [twin, { ...twin, ts: twin.ts - 1 }],
    })
    expect(both.statusCode).toBe(400)
    expect(both.json().error.details.map((d: { index: number }) => d.index)).toEqual([1])
    expect((await send(keyA, { gateId: 'gate-a', sentAt: NOW, records: [twin] })).statusCode).toBe(200)
    expect(await stored(twin.id)).toHaveLength(1)
    // another gate sending that id (a gate copying another's ids)
    const copied = await send(keyB, {
      gateId: 'gate-b',
      sentAt: NOW,
      records: [{ ...first, gateId: 'gate-b' }],
    })
    expect(copied.statusCode).toBe(400)
    expect(await stored(first.id)).toHaveLength(1)

    // ops see it: one open incident per gate, counted, and the refusals counted in the metrics
    expect(await openConflicts('gate-a')).toEqual([
      {
        other_gate_id: null,
        detail: expect.objectContaining({
          records: 3,
          batches: 3,
          last: expect.objectContaining({ recordId: twin.id }),
        }),
      },
    ])
    expect(await openConflicts('gate-b')).toEqual([
      { other_gate_id: 'gate-a', detail: expect.objectContaining({ records: 1 }) },
    ])
    expect((await refusedCount()) - counted).toBe(4)

    // the same without COPY (INGEST_COPY=false, as under npm start)
    const config = loadCloudConfig({ DATABASE_URL: db.url, INGEST_COPY: 'false' })
    const plainPool = createPool(config)
    const plain = await buildApp({ config, pool: plainPool, log: silentLog, now: () => NOW, authCacheMs: 1 })
    try {
      const post = (records: Checkin[]) =>
        plain.inject({
          method: 'POST',
          url: '/v1/sync/checkins',
          headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' },
          payload: JSON.stringify({ gateId: 'gate-a', sentAt: NOW, records }),
        })
      const fresh = rec('gate-a')
      expect((await post([fresh, first])).json()).toMatchObject({ accepted: 1, duplicates: 1 })
      expect((await post([{ ...fresh, ts: fresh.ts + 1 }])).statusCode).toBe(400)
      expect(await stored(fresh.id)).toHaveLength(1)
    } finally {
      await plain.close()
      await plainPool.end()
    }
  })

  it('accepts gzip bodies', async () => {
    const r = rec('gate-a')
    const res = await send(keyA, gzipSync(JSON.stringify({ gateId: 'gate-a', sentAt: NOW, records: [r] })), {
      'content-encoding': 'gzip',
    })
    expect(res.statusCode).toBe(200)
    expect(res.json().accepted).toBe(1)
  })

  it('bad batches get a clear 4xx and store nothing', async () => {
    const before = await count()
    const badJson = await send(keyA, '{"gateId": "gate-a", "records": [')
    expect(badJson.statusCode).toBe(400)
    const wrongTypes = await send(keyA, {
      gateId: 'gate-a',
      sentAt: NOW,
      records: [rec('gate-a'), { ...rec('gate-a'), rssi: 'loud', decision: 'maybe' }],
    })
    expect(wrongTypes.statusCode).toBe(400)
    expect(wrongTypes.json().error.details).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ index: 1, path: 'rssi' }),
        expect.objectContaining({ index: 1, path: 'decision' }),
      ]),
    )
    // text Postgres cannot store (NUL, an unpaired surrogate) is named like any malformed field,
    // so that the gate sets that record aside instead of resending the batch forever
    for (const odd of [{ token: 'ab\u0000cd' }, { participantId: 'P\uD800' }]) {
      const unstorable = await send(keyA, {
        gateId: 'gate-a',
        sentAt: NOW,
        records: [rec('gate-a'), rec('gate-a', odd)],
      })
      expect(unstorable.statusCode).toBe(400)
      expect(unstorable.json().error.details).toEqual([
        expect.objectContaining({
          index: 1,
          path: Object.keys(odd)[0],
          message: expect.stringMatching(/cannot be stored/),
        }),
      ])
    }
    const otherGate = await send(keyA, {
      gateId: 'gate-a',
      sentAt: NOW,
      records: [rec('gate-a'), rec('gate-b')],
    })
    expect(otherGate.statusCode).toBe(403)
    const claimOther = await send(keyA, { gateId: 'gate-b', sentAt: NOW, records: [rec('gate-b')] })
    expect(claimOther.statusCode).toBe(403)
    const huge = await send(keyA, {
      gateId: 'gate-a',
      sentAt: NOW,
      records: Array.from({ length: 1200 }, () => rec('gate-a')),
    })
    expect(huge.statusCode).toBe(413)
    const bomb = await send(keyA, gzipSync(Buffer.alloc(5_000_000, 0x20)), { 'content-encoding': 'gzip' })
    expect(bomb.statusCode).toBe(413)
    const empty = await send(keyA, { gateId: 'gate-a', sentAt: NOW, records: [] })
    expect(empty.statusCode).toBe(400)
    expect(await count()).toBe(before)
  })

  it('rejects records with timestamps far in the past or future, with a reason each', async () => {
    const before = await count()
    const old = rec('gate-a', { ts: Date.UTC(2020, 0, 1) })
    const future = rec('gate-a', { ts: NOW + 30 * 86_400_000 })
    const all = await send(keyA, { gateId: 'gate-a', sentAt: NOW, records: [old, future] })
    expect(all.statusCode).toBe(422)
    expect(all.json().rejected).toEqual([
      { id: old.id, reason: 'ts_too_old' },
      { id: future.id, reason: 'ts_in_future' },
    ])
    const good = rec('gate-a')
    const mixed = await send(keyA, { gateId: 'gate-a', sentAt: NOW, records: [good, future] })
    expect(mixed.statusCode).toBe(200)
    expect(mixed.json()).toMatchObject({
      accepted: 1,
      stored: [good.id],
      rejected: [{ id: future.id, reason: 'ts_in_future' }],
    })
    expect(await count()).toBe(before + 1)
  })

  it('raises a double-entry incident when two offline gates admit the same participant', async () => {
    const a = rec('gate-a', { participantId: 'P-2', token: '0002bbbb', ts: NOW - 600_000 })
    // the same participant at gate-a earlier too, farther from b: the nearest is the one reported
    const a0 = rec('gate-a', { participantId: 'P-2', token: '0002bbbb', ts: NOW - 780_000 })
    const b = rec('gate-b', { participantId: 'P-2', token: '0002bbbb', ts: NOW - 540_000 })
    // another participant at both gates, 6 min apart: outside the 5 min window, no incident
    const c1 = rec('gate-a', { participantId: 'P-3', token: '0003cccc', ts: NOW - 900_000 })
    const c2 = rec('gate-b', { participantId: 'P-3', token: '0003cccc', ts: NOW - 540_000 })
    expect((await send(keyA, { gateId: 'gate-a', sentAt: NOW, records: [a0, a, c1] })).statusCode).toBe(200)
    expect((await send(keyB, { gateId: 'gate-b', sentAt: NOW, records: [b, c2] })).statusCode).toBe(200)
    const res = await ops('/v1/incidents?kind=double_entry')
    expect(res.statusCode).toBe(200)
    const inc = res.json().incidents
    expect(inc).toHaveLength(1)
    expect(inc[0]).toMatchObject({
      gateId: 'gate-b',
      participantId: 'P-2',
      recordId: b.id,
      otherGateId: 'gate-a',
      otherRecordId: a.id,
      detail: { gapMs: 60_000 },
    })
    // resent, it raises nothing more
    expect((await send(keyB, { gateId: 'gate-b', sentAt: NOW, records: [b, c2] })).json()).toMatchObject({
      duplicates: 2,
    })
    expect((await ops('/v1/incidents?kind=double_entry')).json().incidents).toHaveLength(1)
    // both check-ins are real and both are stored
    expect(
      (
        await sql.query('SELECT count(*)::int AS n FROM attendance_records WHERE id = ANY($1)', [
          [a.id, b.id],
        ])
      ).rows[0].n,
    ).toBe(2)
  })

  it('makes clock skew and late uploads visible', async () => {
    const skewed = rec('gate-b')
    await send(keyB, { gateId: 'gate-b', sentAt: NOW + 600_000, records: [skewed] })
    // late on the gate's own clock (made 5 h before it was sent), sent on that skewed clock
    const late = rec('gate-b', { ts: NOW + 600_000 - 5 * 3_600_000 })
    await send(keyB, { gateId: 'gate-b', sentAt: NOW + 600_000, records: [late] })
    const kinds = (await ops('/v1/incidents'))
      .json()
      .incidents.map((i: { kind: string; recordId: string }) => `${i.kind}:${i.recordId}`)
    expect(kinds).toContain(`clock_skew:${skewed.id}`)
    expect(kinds).toContain(`late_upload:${late.id}`)
    const g = await sql.query(`SELECT last_seen_at, last_skew_ms FROM gates WHERE id = 'gate-b'`)
    expect(g.rows[0].last_seen_at).toBeInstanceOf(Date)
    // a skewed gate that keeps syncing is one open incident, kept up to date, not one per batch;
    // and records made a second before their upload on a clock 10 min ahead are not late
    for (let i = 0; i < 3; i++)
      await send(keyB, {
        gateId: 'gate-b',
        sentAt: NOW + 600_000 + i,
        records: [rec('gate-b', { ts: NOW + 599_000 })],
      })
    const open = await sql.query(
      `SELECT kind, detail FROM incidents WHERE gate_id = 'gate-b' AND resolved_at IS NULL AND kind IN ('clock_skew', 'late_upload') ORDER BY kind`,
    )
    expect(open.rows).toEqual([
      {
        kind: 'clock_skew',
        detail: expect.objectContaining({ skewMs: 600_002, max_skewMs: 600_002, batches: 5 }),
      },
      {
        kind: 'late_upload',
        detail: expect.objectContaining({ lateMs: 5 * 3_600_000, records: 1, batches: 1 }),
      },
    ])
    // the clock right again: the incident is over; wrong again: a new one
    await send(keyB, { gateId: 'gate-b', sentAt: NOW + 1_000, records: [rec('gate-b')] })
    const skew = () =>
      sql.query(
        `SELECT resolved_at IS NULL AS open, detail FROM incidents WHERE gate_id = 'gate-b' AND kind = 'clock_skew' ORDER BY created_at, id`,
      )
    expect((await skew()).rows).toEqual([
      { open: false, detail: expect.objectContaining({ batches: 5, resolvedSkewMs: 1_000 }) },
    ])
    await send(keyB, { gateId: 'gate-b', sentAt: NOW - 3_600_000, records: [rec('gate-b')] })
    expect((await skew()).rows).toEqual([
      { open: false, detail: expect.objectContaining({ batches: 5 }) },
      { open: true, detail: expect.objectContaining({ skewMs: -3_600_000, batches: 1 }) },
    ])
  })

  it('a batch whose upload fails after its records went in is not half stored: the resend stores it and raises its incidents', async () => {
    // the gate's row is locked by another session past the statement timeout: the upload fails (503)
    const config = loadCloudConfig({ DATABASE_URL: db.url, PG_STATEMENT_TIMEOUT_MS: '300' })
    const shortPool = createPool(config)
    const short = await buildApp({ config, pool: shortPool, log: silentLog, now: () => NOW, authCacheMs: 1 })
    const keyC = await addGate(pool, 'gate-c')
    const late = rec('gate-c', { ts: NOW - 3 * 3_600_000 })
    const body = JSON.stringify({ gateId: 'gate-c', sentAt: NOW, records: [late] })
    const post = () =>
      short.inject({
        method: 'POST',
        url: '/v1/sync/checkins',
        headers: { authorization: `Bearer ${keyC}`, 'content-type': 'application/json' },
        payload: body,
      })
    const locker = await pool.connect()
    try {
      await locker.query('BEGIN')
      await locker.query(`SELECT 1 FROM gates WHERE id = 'gate-c' FOR UPDATE`)
      const failed = await post()
      expect(failed.statusCode).toBe(503)
      const stored = await sql.query('SELECT count(*)::int AS n FROM attendance_records WHERE id = $1', [
        late.id,
      ])
      expect(stored.rows[0].n).toBe(0)
      await locker.query('ROLLBACK')
      const resent = await post()
      expect(resent.json()).toMatchObject({ accepted: 1, duplicates: 0 })
      const inc = await sql.query(
        `SELECT kind FROM incidents WHERE gate_id = 'gate-c' AND resolved_at IS NULL`,
      )
      expect(inc.rows.map((r) => r.kind)).toEqual(['late_upload'])
    } finally {
      locker.release()
      await short.close()
      await shortPool.end()
    }
  })

  it('serves roster deltas with a cursor, revocations included, and 304 when nothing changed', async () => {
    const get = (since: number, etag?: string) =>
      app.inject({
        url: `/v1/roster?since=${since}`,
        headers: { authorization: `Bearer ${keyA}`, ...(etag ? { 'if-none-match': etag } : {}) },
      })
    const full = await get(0)
    expect(full.statusCode).toBe(200)
    const d = full.json()
    expect(d.changes.map((c: { token: string }) => c.token).sort()).toEqual(['0001aaaa', '0002bbbb'])
    const unchanged = await get(d.cursor, full.headers.etag as string)
    expect(unchanged.statusCode).toBe(304)
    await importParticipants(pool, [
      {
        token: '0001aaaa',
        participantId: 'P-1',
        status: 'revoked',
        name: 'Ada Lovelace',
        email: 'ada@example.org',
      },
    ])
    // the import's NOTIFY drops the cached delta on every node: the gate's next pull sees the change
    let after = await get(d.cursor, full.headers.etag as string)
    for (let i = 0; i < 50 && after.statusCode !== 200; i++) {
      await new Promise((r) => setTimeout(r, 20))
      after = await get(d.cursor, full.headers.etag as string)
    }
    expect(after.statusCode).toBe(200)
    expect(after.json().changes).toEqual([
      expect.objectContaining({ token: '0001aaaa', participantId: 'P-1', status: 'revoked' }),
    ])
    // an identical re-import changes nothing
    const r = await importParticipants(pool, [
      {
        token: '0001aaaa',
        participantId: 'P-1',
        status: 'revoked',
        name: 'Ada Lovelace',
        email: 'ada@example.org',
      },
    ])
    expect(r).toEqual({ inserted: 0, updated: 0, unchanged: 1 })
  })

  it('a gate never skips a roster change that commits late, and loses participants deleted or moved away', async () => {
    const pull = async (since: number) =>
      (
        await app.inject({ url: `/v1/roster?since=${since}`, headers: { authorization: `Bearer ${keyA}` } })
      ).json() as {
        cursor: number
        changes: Array<{ participantId: string; status: string; seq: number }>
      }
    // pull until the answer holds `want` (a cached delta is dropped by the change's NOTIFY, at once but not synchronously)
    const pullUntil = async (since: number, want: (d: Awaited<ReturnType<typeof pull>>) => boolean) => {
      let d = await pull(since)
      for (let i = 0; i < 50 && !want(d); i++) {
        await new Promise((r) => setTimeout(r, 20))
        d = await pull(since)
      }
      return d
    }
    await importParticipants(pool, [
      { token: '0007aaaa', participantId: 'P-7', status: 'active' },
      { token: '0008aaaa', participantId: 'P-8', status: 'active' },
    ])
    let cursor = (await pullUntil(0, (d) => d.changes.some((c) => c.participantId === 'P-8'))).cursor
    // an edit is still open (its sequence number taken) while an import of a new participant runs
    const slow = await pool.connect()
    await slow.query('BEGIN')
    await slow.query(`UPDATE participants SET status = 'revoked' WHERE id = 'P-7'`)
    const importing = importParticipants(pool, [
      { token: '0009aaaa', participantId: 'P-9', status: 'active' },
    ])
    await new Promise((r) => setTimeout(r, 300))
    // the gate pulls meanwhile and moves its cursor to whatever it got
    cursor = (await pull(cursor)).cursor
    await slow.query('COMMIT')
    slow.release()
    await importing
    const after = await pullUntil(cursor, (d) => d.changes.some((c) => c.participantId === 'P-9'))
    expect(after.changes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ participantId: 'P-7', status: 'revoked' }),
        expect.objectContaining({ participantId: 'P-9', status: 'active' }),
      ]),
    )
    cursor = after.cursor
    // deleted, or moved to another event: inactive at this gate (its event is "none")
    await sql.query(`DELETE FROM participants WHERE id = 'P-9'`)
    await sql.query(`INSERT INTO events (id, name) VALUES ('ev-other', 'other') ON CONFLICT DO NOTHING`)
    await sql.query(`UPDATE participants SET event_id = 'ev-other' WHERE id = 'P-8'`)
    const gone = await pullUntil(cursor, (d) => d.changes.length >= 2)
    expect(gone.changes).toEqual([
      expect.objectContaining({ participantId: 'P-9', status: 'inactive' }),
      expect.objectContaining({ participantId: 'P-8', status: 'inactive' }),
    ])
  })

  it('answers the seed critical queries for ops, and only with the ops token', async () => {
    expect((await app.inject({ url: '/v1/query/gates/counts?since=0' })).statusCode).toBe(401)
    const page1 = (await ops('/v1/query/participants/P-1/checkins?limit=2')).json()
    expect(page1.checkins).toHaveLength(2)
    expect(new Date(page1.checkins[0].ts).getTime()).toBeGreaterThanOrEqual(
      new Date(page1.checkins[1].ts).getTime(),
    )
    const page2 = (
      await ops(`/v1/query/participants/P-1/checkins?limit=2&before=${encodeURIComponent(page1.next)}`)
    ).json()
    for (const c of page2.checkins)
      expect(new Date(c.ts).getTime()).toBeLessThanOrEqual(new Date(page1.checkins[1].ts).getTime())
    // rows sharing a time are neither skipped nor repeated across pages
    const tied = Array.from({ length: 3 }, () => rec('gate-b', { participantId: 'P-tie', ts: NOW - 30_000 }))
    await send(keyB, {
      gateId: 'gate-b',
      sentAt: NOW,
      records: [...tied, rec('gate-b', { participantId: 'P-tie' })],
    })
    const seen: string[] = []
    let before = ''
    for (let i = 0; i < 5; i++) {
      const page = (
        await ops(
          `/v1/query/participants/P-tie/checkins?limit=2${before ? `&before=${encodeURIComponent(before)}` : ''}`,
        )
      ).json()
      seen.push(...page.checkins.map((c: { id: string }) => c.id))
      if (!page.next) break
      before = page.next
    }
    expect(seen).toHaveLength(4)
    expect(new Set(seen).size).toBe(4)
    // a plain time still means "before it": the three at that time are not, the earlier one is
    const byTime = (
      await ops(
        `/v1/query/participants/P-tie/checkins?before=${encodeURIComponent(new Date(NOW - 30_000).toISOString())}`,
      )
    ).json()
    expect(byTime.checkins.map((c: { ts: string }) => c.ts)).toEqual([new Date(NOW - 60_000).toISOString()])
    const since = new Date(NOW - 3_600_000).toISOString()
    const gateCount = (await ops(`/v1/query/gates/gate-a/count?since=${since}`)).json()
    expect(gateCount.count).toBeGreaterThan(0)
    const perGate = (await ops(`/v1/query/gates/counts?since=${since}`)).json()
    expect(perGate.gates.map((g: { gateId: string }) => g.gateId)).toEqual(['gate-a', 'gate-b'])
    expect((await ops('/v1/query/tokens/0002bbbb')).json()).toMatchObject({ id: 'P-2', status: 'active' })
    expect((await ops('/v1/query/tokens/0001aaaa')).statusCode).toBe(404) // revoked above
    const found = (await ops('/v1/query/participants?q=grace')).json()
    expect(found.participants.map((p: { id: string }) => p.id)).toEqual(['P-2'])
    expect((await ops('/v1/query/gates/counts?since=yesterday')).statusCode).toBe(400)
  })

  it('rotated and revoked keys stop working', async () => {
    const newKey = await rotateKey(pool, 'gate-a', 0)
    await new Promise((r) => setTimeout(r, 5))
    expect((await send(keyA, { gateId: 'gate-a', sentAt: NOW, records: [rec('gate-a')] })).statusCode).toBe(
      401,
    )
    expect((await send(newKey, { gateId: 'gate-a', sentAt: NOW, records: [rec('gate-a')] })).statusCode).toBe(
      200,
    )
    await revokeGate(pool, 'gate-a')
    await new Promise((r) => setTimeout(r, 5))
    expect((await send(newKey, { gateId: 'gate-a', sentAt: NOW, records: [rec('gate-a')] })).statusCode).toBe(
      401,
    )
  })

  it('with the 30 s key cache: a rotated key ends with its grace, and uploads do not empty the cache', async () => {
    const config = loadCloudConfig({ DATABASE_URL: db.url })
    const cached = await buildApp({ config, pool, log: silentLog, now: () => NOW })
    const listener = await connect(db.url)
    const heard: string[] = []
    listener.on('notification', (n) => heard.push(n.channel))
    await listener.query('LISTEN gate_keys_changed')
    try {
      const oldKey = await addGate(pool, 'gate-k')
      const pullWith = async (k: string) =>
        (await cached.inject({ url: '/v1/roster?since=0', headers: { authorization: `Bearer ${k}` } }))
          .statusCode
      expect(await pullWith(oldKey)).toBe(200) // now in the cache
      await new Promise((r) => setTimeout(r, 100))
      heard.length = 0 // adding the gate's key was announced, as it should be
      const upload = await cached.inject({
        method: 'POST',
        url: '/v1/sync/checkins',
        headers: { authorization: `Bearer ${oldKey}`, 'content-type': 'application/json' },
        payload: JSON.stringify({ gateId: 'gate-k', sentAt: NOW, records: [rec('gate-k')] }),
      })
      expect(upload.statusCode).toBe(200)
      await new Promise((r) => setTimeout(r, 200))
      expect(heard).toEqual([]) // the upload touched gates.last_seen_at, which no cache holds
      const newKey = await rotateKey(pool, 'gate-k', 1)
      expect(await pullWith(newKey)).toBe(200)
      expect(await pullWith(oldKey)).toBe(200) // within its grace
      await new Promise((r) => setTimeout(r, 1_200))
      expect(await pullWith(oldKey)).toBe(401) // the grace is over, whatever the cache's TTL
      expect(await pullWith(newKey)).toBe(200)
    } finally {
      await listener.end()
      await cached.close()
    }
  })

  it('answers 503, not a hang, when Postgres stops answering in the middle of a connection', async () => {
    // a TCP relay to the real Postgres that can freeze: connections stay open, nothing comes back
    let frozen = false
    const sockets = new Set<net.Socket>()
    const relay = net.createServer((client) => {
      const server = net.connect(5432, '127.0.0.1')
      sockets.add(client).add(server)
      client.on('data', (d) => {
        if (!frozen) server.write(d)
      })
      server.on('data', (d) => {
        if (!frozen) client.write(d)
      })
      const end = () => {
        client.destroy()
        server.destroy()
      }
      client.on('error', end)
      server.on('error', end)
      client.on('close', end)
      server.on('close', end)
    })
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r))
    const port = (relay.address() as net.AddressInfo).port
    const dbName = new URL(db.url).pathname.slice(1)
    const config = loadCloudConfig({
      DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/${dbName}`,
      PG_STATEMENT_TIMEOUT_MS: '500',
      PG_ACQUIRE_TIMEOUT_MS: '500',
    })
    const relayed = createPool(config)
    const app2 = await buildApp({ config, pool: relayed, log: silentLog })
    try {
      expect((await app2.inject({ url: '/readyz' })).statusCode).toBe(200)
      frozen = true
      const t0 = Date.now()
      const res = await app2.inject({ url: '/readyz' })
      expect(res.statusCode).toBe(503)
      expect(Date.now() - t0).toBeLessThan(3_000)
    } finally {
      relay.close()
      for (const c of sockets) c.destroy()
      await app2.close()
      await relayed.end().catch(() => {})
    }
  })

  it('logs a gate that disconnects mid-upload as gone, not as the database being unavailable', async () => {
    const lines: string[] = []
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) })
    const config = loadCloudConfig({ DATABASE_URL: db.url })
    const listening = await buildApp({ config, pool, log, now: () => NOW })
    await listening.listen({ host: '127.0.0.1', port: 0 })
    const key = await addGate(pool, 'gate-uplink')
    try {
      const port = (listening.server.address() as net.AddressInfo).port
      // the key checked once, so the next upload goes straight to reading its body
      const ok = await fetch(`http://127.0.0.1:${port}/v1/roster`, {
        headers: { authorization: `Bearer ${key}` },
      })
      expect(ok.status).toBe(200)
      const s = net.connect(port, '127.0.0.1')
      await once(s, 'connect')
      s.write(
        `POST /v1/sync/checkins HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"gateId":"gate-uplink",',
      )
      await new Promise((r) => setTimeout(r, 200))
      s.resetAndDestroy() // a gate losing its uplink mid-batch
      await eventually(() => lines.some((l) => l.includes('client went away')), 5_000, 20)
      expect(lines.filter((l) => l.includes('database unavailable'))).toEqual([])
    } finally {
      await listening.close()
    }
  })

  it('answers 503 with Retry-After, quickly, when Postgres is unreachable', async () => {
    const config = loadCloudConfig({
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
      PG_ACQUIRE_TIMEOUT_MS: '500',
    })
    const deadPool = createPool(config)
    const dead = await buildApp({ config, pool: deadPool, log: silentLog })
    try {
      const t0 = Date.now()
      const res = await dead.inject({
        method: 'POST',
        url: '/v1/sync/checkins',
        headers: { authorization: `Bearer ${keyB}`, 'content-type': 'application/json' },
        payload: JSON.stringify({ gateId: 'gate-b', sentAt: NOW, records: [rec('gate-b')] }),
      })
      expect(res.statusCode).toBe(503)
      expect(res.headers['retry-after']).toBe('5')
      expect(Date.now() - t0).toBeLessThan(3_000)
      expect((await dead.inject({ url: '/readyz' })).statusCode).toBe(503)
    } finally {
      await dead.close()
      await deadPool.end()
    }
  })

  it('caches token look-ups (unknown tokens too) and drops them when participants change, however they change', async () => {
    expect((await ops('/v1/query/tokens/00ccee01')).statusCode).toBe(404)
    await sql.query(
      `INSERT INTO participants (id, token, status, name) VALUES ('P-new', '00ccee01', 'active', 'New Person')`,
    )
    // plain SQL, not the API: the NOTIFY trigger tells the service, which drops its cached answers
    let res = await ops('/v1/query/tokens/00ccee01')
    for (let i = 0; i < 50 && res.statusCode !== 200; i++) {
      await new Promise((r) => setTimeout(r, 20))
      res = await ops('/v1/query/tokens/00ccee01')
    }
    expect(res.json()).toMatchObject({ id: 'P-new', status: 'active' })
    expect((await ops('/v1/query/tokens/00ccee01')).json()).toMatchObject({ id: 'P-new' }) // from L1
    const metrics = await app.inject({ url: '/metrics' })
    expect(metrics.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = metrics.body
    expect(text).toMatch(/^cache_requests_total\{layer="l1",result="hit"\} \d+/m)
    expect(text).toMatch(/^cache_requests_total\{layer="l1",result="miss"\} \d+/m)
    expect(text).toMatch(
      /^http_request_duration_seconds_count\{method="GET",route="\/v1\/query\/tokens\/:token",status="404"\} \d+/m,
    )
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds /m)
    expect(text).not.toContain('00ccee01') // routes, never raw URLs, in labels
  })

  it('shows the last minutes at /v1/perf and suggests from the rules and the live query plans', async () => {
    for (let i = 0; i < 5; i++) await ops('/v1/query/tokens/0002bbbb')
    const perf = (await ops('/v1/perf')).json()
    expect(perf.windowSeconds).toBe(300)
    const route = perf.routes.find((r: { route: string }) => r.route === 'GET /v1/query/tokens/:token')
    expect(route.count).toBeGreaterThanOrEqual(5)
    expect(route.p99Ms).toBeGreaterThan(0)
    expect(perf.cache.l1.hits).toBeGreaterThanOrEqual(4)
    expect(perf.db.map((q: { query: string }) => q.query)).toContain('ingest.batch')
    expect(perf.cacheLayers.circuit).toBe('closed')
    const sug = (await ops('/v1/perf/suggestions')).json()
    expect(Array.isArray(sug.suggestions)).toBe(true)
    expect(sug.plans).toBeNull() // EXPLAIN of the critical queries ran on the live data
    expect((await app.inject({ url: '/v1/perf' })).statusCode).toBe(401)
  })

  it('sheds load with 503 and Retry-After when the event loop is overloaded', async () => {
    const config = loadCloudConfig({ DATABASE_URL: db.url, OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '100' })
    const busy = await buildApp({ config, pool, log: silentLog })
    try {
      await busy.ready()
      // the event loop is overloaded: 150 ms of synchronous work at every turn, for over a sample interval
      let res = await busy.inject({ url: '/healthz' })
      const end = Date.now() + 3_000
      while (res.statusCode !== 503 && Date.now() < end) {
        const busyUntil = Date.now() + 150
        while (Date.now() < busyUntil) {
          // stuck
        }
        await new Promise((r) => setImmediate(r))
        res = await busy.inject({ url: '/healthz' })
      }
      expect(res.statusCode).toBe(503)
      expect(res.headers['retry-after']).toBe('5')
    } finally {
      await busy.close()
    }
  })

  it('serves the seed critical keys, and warms them with the active roster at start', async () => {
    const stats = (await ops('/v1/query/stats')).json()
    expect(stats).toMatchObject({ checkins: expect.any(Number), gatesSeen: expect.any(Number) })
    const gates = (await ops('/v1/query/gates')).json()
    expect(gates.gates.map((g: { id: string }) => g.id)).toEqual(expect.arrayContaining(['gate-a', 'gate-b']))
    expect((await ops('/v1/query/events')).json()).toHaveProperty('events')
    const cache = new TieredCache({
      ...cacheDefaults,
      redis: null,
      subscriber: null,
      log: silentLog,
      registry: new Registry(),
    })
    await warmCache(cache, pool, silentLog, 1000)
    const never = async (): Promise<never> => {
      throw new Error('not warmed')
    }
    expect(await cache.getOrLoad('active_gates', never)).toMatchObject({ gates: expect.any(Array) })
    expect(await cache.getOrLoad('stats:overall', never)).toMatchObject({ checkins: expect.any(Number) })
    expect(await cache.getOrLoad('tok:0002bbbb', never, { tags: ['participants'] })).toMatchObject({
      id: 'P-2',
    })
    expect(await cache.getOrLoad('roster::0:5000', never, { tags: ['participants'] })).toHaveProperty(
      'changes',
    )
  })

  // last: it moves a participant to another event
  it("the roster index (the event check's fast path) knows each (event, participant, badge) once read, and keeps it", async () => {
    const index = new RosterIndex(pool)
    expect(index.has(null, 'P-1', '0001aaaa')).toBe(false)
    await index.refresh()
    expect(index.has(null, 'P-1', '0001aaaa')).toBe(true)
    expect(index.has(null, 'P-1', '0002bbbb')).toBe(false) // another participant's badge
    expect(index.has('fest-x', 'P-1', '0001aaaa')).toBe(false) // another event
    expect(index.has(null, 'P-1\u0000', '0001aaaa')).toBe(false)
    const idx = { token: '00ee0001', participantId: 'P-idx', status: 'active' as const }
    await importParticipants(pool, [idx])
    // not read yet: the database decides such a record
    expect(index.has(null, 'P-idx', '00ee0001')).toBe(false)
    await index.refresh()
    expect(index.has(null, 'P-idx', '00ee0001')).toBe(true)
    // moved to another event: both (the gate may have decided before it heard)
    await importParticipants(pool, [idx], { eventId: 'idx-event' })
    await index.refresh()
    expect(index.has(null, 'P-idx', '00ee0001')).toBe(true)
    expect(index.has('idx-event', 'P-idx', '00ee0001')).toBe(true)
    // a roster of 30,000, read in pages, each one found
    await sql.query(
      `INSERT INTO participants (id, token, status, event_id)
       SELECT 'Q-' || n, lpad(to_hex(n), 10, '0'), 'active', 'idx-event' FROM generate_series(1, 30000) n`,
    )
    const before = index.size
    await Promise.all([index.refresh(), index.refresh()])
    expect(index.size - before).toBe(30_000)
    let found = 0
    for (let n = 1; n <= 30_000; n++)
      if (index.has('idx-event', `Q-${n}`, n.toString(16).padStart(10, '0'))) found++
    expect(found).toBe(30_000)
    expect(index.has('idx-event', 'Q-1', '0000000002')).toBe(false)
  })
})
