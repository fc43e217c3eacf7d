import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { runner } from 'node-pg-migrate'
import type pg from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { migrateUp, migrationsDir } from '../../../cloud/db/migrate.js'
import { analyzeQueries, maintainTables } from '../../../cloud/ops/analyze.js'
import {
  addIntervals,
  floorTo,
  type PartitionInterval,
  partitionFor,
} from '../../../cloud/partitions/intervals.js'
import {
  listPartitions,
  maintainPartitions,
  type PartitionPolicy,
} from '../../../cloud/partitions/manager.js'
import { connect, tempDatabase } from '../../support/pg-helpers.js'

const d = (s: string) => new Date(s)

describe('partition intervals (UTC)', () => {
  it.each<[PartitionInterval, string, string, string, string]>([
    [
      'day',
      '2026-11-25T23:59:59Z',
      '2026-11-25T00:00:00Z',
      '2026-11-26T00:00:00Z',
      'attendance_records_p20261125',
    ],
    [
      'week',
      '2026-11-25T10:00:00Z',
      '2026-11-23T00:00:00Z',
      '2026-11-30T00:00:00Z',
      'attendance_records_p20261123',
    ],
    [
      'week',
      '2026-11-29T23:00:00Z',
      '2026-11-23T00:00:00Z',
      '2026-11-30T00:00:00Z',
      'attendance_records_p20261123',
    ],
    [
      'month',
      '2026-12-31T23:59:59Z',
      '2026-12-01T00:00:00Z',
      '2027-01-01T00:00:00Z',
      'attendance_records_p20261201',
    ],
    [
      'quarter',
      '2026-11-25T10:00:00Z',
      '2026-10-01T00:00:00Z',
      '2027-01-01T00:00:00Z',
      'attendance_records_p20261001',
    ],
    [
      'quarter',
      '2024-01-01T00:00:00Z',
      '2024-01-01T00:00:00Z',
      '2024-04-01T00:00:00Z',
      'attendance_records_p20240101',
    ],
  ])('%s holding %s is [%s, %s) named %s', (interval, at, from, to, name) => {
    const p = partitionFor(interval, d(at))
    expect(p).toEqual({ name, from: d(from), to: d(to) })
  })

  it('steps across year ends and leap days', () => {
    expect(addIntervals('quarter', d('2026-10-01T00:00:00Z'), 1)).toEqual(d('2027-01-01T00:00:00Z'))
    expect(addIntervals('month', d('2028-01-01T00:00:00Z'), 1)).toEqual(d('2028-02-01T00:00:00Z'))
    expect(addIntervals('day', d('2028-02-28T00:00:00Z'), 1)).toEqual(d('2028-02-29T00:00:00Z'))
    expect(floorTo('week', d('2027-01-01T12:00:00Z'))).toEqual(d('2026-12-28T00:00:00Z'))
  })
})

describe('partition manager on real Postgres', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let client: pg.Client
  beforeAll(async () => {
    db = await tempDatabase()
    client = await connect(db.url)
  })
  afterAll(async () => {
    await client?.end()
    await db?.drop()
  })
  beforeEach(async () => {
    // a clean slate: drop every managed partition, empty the default one
    for (const p of await listPartitions(client)) {
      if (!p.isDefault) await client.query(`DROP TABLE ${client.escapeIdentifier(p.name)}`)
    }
    await client.query('TRUNCATE attendance_records')
  })

  const insert = async (id: string, ts: string) =>
    client.query(
      `INSERT INTO attendance_records (id, ts, gate_id, token, method, decision) VALUES ($1, $2, 'g1', 'aabbccdd', 'ble', 'admit')`,
      [id, ts],
    )
  const where = async (id: string) =>
    (
      await client.query<{ t: string }>(
        `SELECT tableoid::regclass::text AS t FROM attendance_records WHERE id = $1`,
        [id],
      )
    ).rows.map((r) => r.t)
  const policy = (p: Partial<PartitionPolicy> = {}): PartitionPolicy => ({
    interval: 'quarter',
    premake: 2,
    retentionDays: null,
    dropDetached: true,
    ...p,
  })

  it('migrations are re-runnable', async () => {
    expect((await migrateUp(client)).applied).toEqual([])
  })

  it('creates the current partition and premake ahead, and is idempotent', async () => {
    const now = d('2026-11-25T10:00:00Z')
    const r = await maintainPartitions(client, policy({ premake: 2 }), now)
    expect(r.created).toEqual([
      'attendance_records_p20261001',
      'attendance_records_p20270101',
      'attendance_records_p20270401',
    ])
    const again = await maintainPartitions(client, policy({ premake: 2 }), now)
    expect(again.created).toEqual([])
    const parts = await listPartitions(client)
    expect(
      parts.filter((p) => !p.isDefault).map((p) => [p.name, p.from?.toISOString(), p.to?.toISOString()]),
    ).toEqual([
      ['attendance_records_p20261001', '2026-10-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
      ['attendance_records_p20270101', '2027-01-01T00:00:00.000Z', '2027-04-01T00:00:00.000Z'],
      ['attendance_records_p20270401', '2027-04-01T00:00:00.000Z', '2027-07-01T00:00:00.000Z'],
    ])
    // rows route to their partition; the partition has the parent's indexes (the seed's by
    // participant and by gate; the one by method is gone: no query read it)
    await insert('01900000-0000-7000-8000-000000000001', '2026-12-31T23:59:59.999Z')
    await insert('01900000-0000-7000-8000-000000000002', '2027-01-01T00:00:00Z')
    expect(await where('01900000-0000-7000-8000-000000000001')).toEqual(['attendance_records_p20261001'])
    expect(await where('01900000-0000-7000-8000-000000000002')).toEqual(['attendance_records_p20270101'])
    const idx = await client.query<{ indexdef: string }>(
      `SELECT indexdef FROM pg_indexes WHERE tablename = 'attendance_records_p20270101' ORDER BY indexname`,
    )
    const defs = idx.rows.map((r) => r.indexdef).join('\n')
    expect(defs).toMatch(/\(participant_id, ts DESC\)/)
    expect(defs).toMatch(/\(gate_id, ts DESC\)/)
    expect(defs).not.toMatch(/\(method, ts DESC\)/)
    expect(defs).toMatch(/UNIQUE INDEX .* \(id, ts\)/)
  })

  it('walks across interval boundaries: day, week and month', async () => {
    for (const [interval, now, first, count] of [
      ['day', '2026-12-31T22:00:00Z', 'attendance_records_p20261231', 4],
      ['week', '2026-12-31T22:00:00Z', 'attendance_records_p20261228', 4],
      ['month', '2026-12-31T22:00:00Z', 'attendance_records_p20261201', 4],
    ] as const) {
      for (const p of await listPartitions(client))
        if (!p.isDefault) await client.query(`DROP TABLE ${client.escapeIdentifier(p.name)}`)
      const r = await maintainPartitions(client, policy({ interval, premake: 3 }), d(now))
      expect(r.created[0]).toBe(first)
      expect(r.created).toHaveLength(count)
      // the next day the manager adds exactly what the horizon moved by
      const later = await maintainPartitions(
        client,
        policy({ interval, premake: 3 }),
        addIntervals(interval, d(now), 1),
      )
      expect(later.created).toHaveLength(1)
    }
  })

  it('after a change of interval, the new ranges fill what the old partitions leave uncovered', async () => {
    // monthly first: October only
    await maintainPartitions(client, policy({ interval: 'month', premake: 0 }), d('2026-10-15T00:00:00Z'))
    // then quarterly in December: Q4 is partly covered by October's partition
    const r = await maintainPartitions(
      client,
      policy({ interval: 'quarter', premake: 1 }),
      d('2026-12-15T00:00:00Z'),
    )
    expect(r.created).toEqual(['attendance_records_p20261101', 'attendance_records_p20270101'])
    expect(r.conflicts).toEqual([])
    const bounds = (await listPartitions(client))
      .filter((p) => !p.isDefault)
      .map((p) => `${p.name} ${p.from?.toISOString().slice(0, 10)}..${p.to?.toISOString().slice(0, 10)}`)
    expect(bounds).toEqual([
      'attendance_records_p20261001 2026-10-01..2026-11-01',
      'attendance_records_p20261101 2026-11-01..2027-01-01',
      'attendance_records_p20270101 2027-01-01..2027-04-01',
    ])
    await insert('01900000-0000-7000-8000-0000000000e1', '2026-12-20T10:00:00Z')
    expect(await where('01900000-0000-7000-8000-0000000000e1')).toEqual(['attendance_records_p20261101'])
    // and back to monthly: every month is covered already, nothing is created
    const back = await maintainPartitions(
      client,
      policy({ interval: 'month', premake: 2 }),
      d('2026-12-15T00:00:00Z'),
    )
    expect(back.created).toEqual([])
  })

  it('a late or far-future record is never refused, and rows in the default partition move to their new partition', async () => {
    await insert('01900000-0000-7000-8000-00000000000a', '2026-08-15T10:00:00Z') // before any partition exists
    await insert('01900000-0000-7000-8000-00000000000b', '2026-11-25T10:00:00Z')
    await insert('01900000-0000-7000-8000-00000000000c', '2099-01-01T00:00:00Z') // a gate with a broken clock
    expect(await where('01900000-0000-7000-8000-00000000000b')).toEqual(['attendance_records_default'])
    const r = await maintainPartitions(client, policy({ premake: 1 }), d('2026-11-25T12:00:00Z'))
    expect(r.created).toEqual([
      'attendance_records_p20260701',
      'attendance_records_p20261001',
      'attendance_records_p20270101',
    ])
    expect(r.movedFromDefault).toBe(2)
    expect(await where('01900000-0000-7000-8000-00000000000a')).toEqual(['attendance_records_p20260701'])
    expect(await where('01900000-0000-7000-8000-00000000000b')).toEqual(['attendance_records_p20261001'])
    // the far-future row stays in the default partition: no run of partitions up to 2099
    expect(await where('01900000-0000-7000-8000-00000000000c')).toEqual(['attendance_records_default'])
    expect(r.leftInDefault).toBe(1)
    expect((await listPartitions(client)).length).toBe(4)
  })

  it('retention detaches and drops old partitions, or only detaches them', async () => {
    await maintainPartitions(client, policy({ premake: 0 }), d('2026-01-15T00:00:00Z'))
    await maintainPartitions(client, policy({ premake: 0 }), d('2026-04-15T00:00:00Z'))
    await insert('01900000-0000-7000-8000-0000000000d1', '2026-02-01T00:00:00Z')
    const keep = await maintainPartitions(
      client,
      policy({ premake: 0, retentionDays: 5, dropDetached: false }),
      d('2026-07-10T00:00:00Z'),
    )
    expect(keep.detached).toEqual(['attendance_records_p20260101', 'attendance_records_p20260401'])
    expect(keep.dropped).toEqual([])
    const kept = await client.query(`SELECT count(*)::int AS n FROM attendance_records_p20260101`)
    expect(kept.rows[0]).toEqual({ n: 1 }) // detached but kept for archiving
    expect(await where('01900000-0000-7000-8000-0000000000d1')).toEqual([]) // no longer part of the table
    await client.query('DROP TABLE attendance_records_p20260101, attendance_records_p20260401')

    await maintainPartitions(client, policy({ premake: 0 }), d('2026-10-15T00:00:00Z'))
    const drop = await maintainPartitions(
      client,
      policy({ premake: 0, retentionDays: 10 }),
      d('2027-01-20T00:00:00Z'),
    )
    expect(drop.dropped).toContain('attendance_records_p20260701')
    const names = (await listPartitions(client)).map((p) => p.name)
    expect(names).not.toContain('attendance_records_p20260701')
  })

  it('is safe when several nodes maintain at once: each partition is created exactly once', async () => {
    const others = await Promise.all([connect(db.url), connect(db.url), connect(db.url)])
    try {
      const now = d('2026-11-25T12:00:00Z')
      const reports = await Promise.all(
        [client, ...others].map((c) => maintainPartitions(c, policy({ interval: 'week', premake: 6 }), now)),
      )
      const created = reports.flatMap((r) => r.created)
      expect(created).toHaveLength(7)
      expect(new Set(created).size).toBe(7)
      // whoever was locked out either skipped or found nothing to do
      for (const r of reports) if (!r.created.length) expect(r.skipped || r.created.length === 0).toBe(true)
      expect((await listPartitions(client)).filter((p) => !p.isDefault)).toHaveLength(7)
    } finally {
      await Promise.all(others.map((c) => c.end()))
    }
  })

  it('retention forgets the check-in ids of the partitions it drops, and only theirs', async () => {
    await client.query('TRUNCATE checkin_ids')
    await maintainPartitions(client, policy({ premake: 0 }), d('2026-01-15T00:00:00Z'))
    await maintainPartitions(client, policy({ premake: 0 }), d('2026-04-15T00:00:00Z'))
    const v7 = (at: string, n: number) => {
      const h = new Date(at).getTime().toString(16).padStart(12, '0')
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-7000-8000-00000000000${n}`
    }
    const ids = {
      old: v7('2026-02-01T00:00:00Z', 1),
      lastOfQuarter: v7('2026-03-31T23:59:59.999Z', 2),
      firstOfNext: v7('2026-04-01T00:00:00Z', 3),
      young: v7('2026-05-01T00:00:00Z', 4),
      // not a UUIDv7: its first bits are no time, it is kept
      random: '00000000-0000-4000-8000-000000000005',
    }
    await client.query('INSERT INTO checkin_ids (id) SELECT unnest($1::uuid[])', [Object.values(ids)])
    const r = await maintainPartitions(
      client,
      policy({ premake: 0, retentionDays: 10 }),
      d('2026-05-20T00:00:00Z'),
    )
    expect(r.dropped).toEqual(['attendance_records_p20260101'])
    expect(r.idsPruned).toBe(2)
    const left = await client.query<{ id: string }>('SELECT id::text AS id FROM checkin_ids ORDER BY id')
    expect(left.rows.map((x) => x.id).sort()).toEqual([ids.firstOfNext, ids.young, ids.random].sort())
    // the fleet's metrics history has no ids: nothing pruned there
    const m = await maintainPartitions(
      client,
      { ...policy({ interval: 'day', premake: 0, retentionDays: 1 }), table: 'gate_metrics' },
      d('2026-05-20T00:00:00Z'),
    )
    expect(m.idsPruned).toBe(0)
  })

  it('lists partitions with exact row counts and sizes', async () => {
    await maintainPartitions(client, policy({ premake: 0 }), d('2026-11-25T12:00:00Z'))
    await insert('01900000-0000-7000-8000-0000000000e1', '2026-11-01T00:00:00Z')
    await insert('01900000-0000-7000-8000-0000000000e2', '2026-11-02T00:00:00Z')
    const parts = await listPartitions(client, { exact: true })
    expect(parts.find((p) => p.name === 'attendance_records_p20261001')).toMatchObject({
      rows: 2,
      isDefault: false,
    })
    expect(parts.find((p) => p.isDefault)).toMatchObject({ name: 'attendance_records_default', rows: 0 })
    for (const p of parts) expect(p.bytes).toBeGreaterThan(0)
  })
})

describe('the check-in id migration on a database that already holds check-ins and partitions', () => {
  it('fills checkin_ids, reports ids stored twice before it, and leaves every row and partition in place', async () => {
    const db = await tempDatabase({ migrate: false })
    const client = await connect(db.url)
    const older = mkdtempSync(path.join(os.tmpdir(), 'gc-migrations-'))
    try {
      // the schema as it was before the migration, with partitions and rows
      for (const f of readdirSync(migrationsDir()))
        if (f < '1764800000000') copyFileSync(path.join(migrationsDir(), f), path.join(older, f))
      await runner({
        dbClient: client,
        dir: older,
        direction: 'up',
        migrationsTable: 'pgmigrations',
        singleTransaction: true,
        checkOrder: true,
        log: () => {},
      })
      const policy: PartitionPolicy = {
        interval: 'month',
        premake: 1,
        retentionDays: null,
        dropDetached: true,
      }
      await maintainPartitions(client, policy, d('2026-11-25T12:00:00Z'))
      const insert = (id: string, ts: string, gate: string) =>
        client.query(
          `INSERT INTO attendance_records (id, ts, gate_id, token, method, decision) VALUES ($1, $2, $3, 'aabbccdd', 'ble', 'admit')`,
          [id, ts, gate],
        )
      const twice = '019a0000-0000-7000-8000-000000000001'
      await insert(twice, '2026-11-10T10:00:00Z', 'g1')
      await insert(twice, '2026-11-12T10:00:00Z', 'g1') // the defect: the same id with another time
      await insert('019a0000-0000-7000-8000-000000000002', '2026-11-20T10:00:00Z', 'g2')
      await insert('019a0000-0000-7000-8000-000000000003', '2099-01-01T00:00:00Z', 'g2') // default partition
      const partitionsBefore = (await listPartitions(client, { exact: true })).map((p) => [p.name, p.rows])

      expect((await migrateUp(client)).applied).toContain('1764800000000_checkin-ids-event-incidents')
      const ids = await client.query<{ id: string }>('SELECT id::text AS id FROM checkin_ids ORDER BY id')
      expect(ids.rows.map((r) => r.id)).toEqual([
        twice,
        '019a0000-0000-7000-8000-000000000002',
        '019a0000-0000-7000-8000-000000000003',
      ])
      const inc = await client.query(
        `SELECT kind, gate_id, record_id::text AS record_id, detail FROM incidents`,
      )
      expect(inc.rows).toEqual([
        {
          kind: 'id_conflict',
          gate_id: 'g1',
          record_id: twice,
          detail: { records: 2, batches: 0, beforeMigration: true },
        },
      ])
      expect((await listPartitions(client, { exact: true })).map((p) => [p.name, p.rows])).toEqual(
        partitionsBefore,
      )
      // from now on an id is unique whatever its time
      await expect(client.query(`INSERT INTO checkin_ids (id) VALUES ($1)`, [twice])).rejects.toMatchObject({
        code: '23505',
      })
    } finally {
      rmSync(older, { recursive: true, force: true })
      await client.end()
      await db.drop()
    }
  })
})

describe('gate-cloud analyze and maintain on real Postgres', () => {
  it('explains the four critical queries: indexes used, partitions pruned, suggestions', async () => {
    const db = await tempDatabase()
    const client = await connect(db.url)
    try {
      await maintainPartitions(
        client,
        { interval: 'month', premake: 1, retentionDays: null, dropDetached: true },
        new Date(),
      )
      await maintainPartitions(
        client,
        { interval: 'month', premake: 0, retentionDays: null, dropDetached: true },
        new Date(Date.now() - 40 * 86_400_000),
      )
      await client.query(
        `INSERT INTO participants (id, token, status, name, email) SELECT 'P-' || i, lpad(to_hex(i), 8, '0'), 'active', 'Name ' || i, 'p' || i || '@x.org' FROM generate_series(1, 2000) i`,
      )
      await client.query(
        `INSERT INTO attendance_records (id, ts, gate_id, participant_id, token, method, decision)
         SELECT gen_random_uuid(), now() - (i % 3000) * interval '1 minute', 'g' || (i % 4), 'P-' || (i % 2000), lpad(to_hex(i % 2000), 8, '0'), 'ble', 'admit'
           FROM generate_series(1, 20000) i`,
      )
      const steps = await maintainTables(client)
      expect(steps.map((s) => s.step)).toContain('VACUUM (ANALYZE) "attendance_records"')
      const r = await analyzeQueries(client)
      expect(r.queries).toHaveLength(4)
      const [q1, q2, q3, q4] = r.queries
      expect(q1?.indexes.some((i) => i.includes('participant_id'))).toBe(true)
      expect(q1?.suggestions.join(' ')).toMatch(/add a time bound/)
      expect(q2?.partitionsScanned).toBeLessThan(q2?.partitionsTotal ?? 0) // pruned to the recent partition(s)
      expect(q3?.indexes).toContain('participants_active_token')
      expect(q4?.partitionsTotal).toBeGreaterThan(2)
      for (const q of r.queries) expect(q.executionMs).toBeGreaterThanOrEqual(0)
      expect(r.general.join(' ')).toMatch(/pg_stat_statements/)
    } finally {
      await client.end()
      await db.drop()
    }
  })
})
