import { gunzipSync } from 'node:zlib'
import type { FastifyInstance } from 'fastify'
import { parquetReadObjects } from 'hyparquet'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { putPolicy } from '../../../cloud/access/policies.js'
import type { AttendanceSummary } from '../../../cloud/attendance/event-figures.js'
import { EXPORT_COLUMNS } from '../../../cloud/attendance/export.js'
import { loadCloudConfig } from '../../../cloud/config.js'
import { createPool } from '../../../cloud/db/pool.js'
import { addGate } from '../../../cloud/gates/store.js'
import { buildApp } from '../../../cloud/http/app.js'
import { importParticipants } from '../../../cloud/participants/import.js'
import type { Checkin } from '../../../shared/checkin.js'
import { gateCheckins, uploadAs } from '../../support/checkins.js'
import { silentLog } from '../../support/helpers.js'
import { tempDatabase } from '../../support/pg-helpers.js'

const OPS = 'ops-token-for-the-event-figures-test'
const BOOT = '0190f7a0-0000-7000-8000-000000000002'
const token = (i: number) => `ab${String(i).padStart(14, '0')}`

/**
 * An event's figures as the console shows them, on real Postgres through the HTTP API: what the
 * gates upload is counted once (resent batches add nothing), annulled admits are not arrivals,
 * another event's check-ins stay out, and the hours are the event's local ones.
 */
describe("an event's attendance figures, kept by the ingest", () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let app: FastifyInstance
  const keys: Record<string, string> = {}

  const made = gateCheckins(BOOT)
  const record = (gate: string, i: number, ts: number, extra: Partial<Checkin> = {}): Checkin =>
    made({ gateId: gate, token: token(i), participantId: `p${i}`, ts, ...extra })
  const upload = (gate: string, records: Checkin[]) => uploadAs(app, keys[gate] as string, gate, records)
  const get = async <T>(url: string, auth = OPS): Promise<{ status: number; body: T }> => {
    const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${auth}` } })
    return { status: res.statusCode, body: res.json() as T }
  }

  beforeAll(async () => {
    db = await tempDatabase()
    const config = loadCloudConfig({ DATABASE_URL: db.url, OPS_TOKEN: OPS })
    pool = createPool(config)
    app = await buildApp({ config, pool, log: silentLog, authCacheMs: 1 })
    for (const g of ['north', 'south']) keys[g] = await addGate(pool, g, { eventId: 'fair' })
    keys['other'] = await addGate(pool, 'other', { eventId: 'expo' })
    const people = (from: number, to: number, status: 'active' | 'revoked' = 'active') =>
      Array.from({ length: to - from }, (_, k) => ({
        participantId: `p${from + k}`,
        token: token(from + k),
        status,
      }))
    await importParticipants(pool, [...people(0, 10), ...people(10, 12, 'revoked')], { eventId: 'fair' })
    await importParticipants(pool, people(100, 105), { eventId: 'expo' })
    await putPolicy(pool, 'fair', {
      timeZone: 'America/New_York',
      zones: [{ id: 'hall', name: 'Hall', capacity: 8 }],
      lanes: [
        { gate: 'north', to: 'hall' },
        { gate: 'south', to: 'hall' },
      ],
      rules: [{ id: 'all', name: 'Everyone', zone: 'hall' }],
    })
  })
  afterAll(async () => {
    await app?.close()
    await pool?.end()
    await db?.drop()
  })

  it('counts arrivals once, denials by reason, and leaves annulled admits and other events out', async () => {
    const now = Date.now()
    const first = [
      record('north', 0, now - 120_000),
      record('north', 1, now - 110_000),
      record('south', 2, now - 100_000),
      // p0 again at the other door: still one arrival
      record('south', 0, now - 60_000),
      record('north', 10, now - 50_000, { decision: 'deny', reason: 'revoked' }),
      record('north', 7, now - 40_000, {
        decision: 'deny',
        reason: 'zone_full',
        explanation: 'zone_full: Hall holds 8',
      }),
    ]
    await upload(
      'north',
      first.filter((r) => r.gateId === 'north'),
    )
    await upload(
      'south',
      first.filter((r) => r.gateId === 'south'),
    )
    // a resent batch is stored once, and counted once
    await upload(
      'north',
      first.filter((r) => r.gateId === 'north'),
    )
    // p1's admit never happened: the gate annulled it
    const p1 = first[1] as Checkin
    await upload('north', [
      record('north', 1, now - 100_000, { decision: 'deny', reason: 'not_passed', annuls: p1.id }),
    ])
    // another event's gate: none of its check-ins count here
    await upload('other', [record('other', 100, now - 30_000), record('other', 101, now - 20_000)])

    const { status, body } = await get<AttendanceSummary>('/v1/query/events/fair/attendance')
    expect(status).toBe(200)
    expect(body.expected).toBe(10)
    expect(body.arrived).toBe(2) // p0 and p2; p1's admit was annulled
    expect(body.timeZone).toBe('America/New_York')
    expect(body.denials.last5).toEqual({ revoked: 1, zone_full: 1 })
    expect(body.denials.last60).toEqual({ revoked: 1, zone_full: 1 })
    const admits = body.perMinute.reduce((n, m) => n + m.admits, 0)
    expect(admits).toBe(3) // four admits, one of them annulled
    expect(body.perMinute).toHaveLength(60)
    expect(body.zones.map((z) => [z.zone, z.capacity])).toEqual([['hall', 8]])

    const other = await get<AttendanceSummary>('/v1/query/events/expo/attendance')
    expect(other.body.arrived).toBe(2)
    expect(other.body.zones).toEqual([])

    // p1 comes through for real later: arrived after all
    await upload('south', [record('south', 1, now - 10_000)])
    expect((await get<AttendanceSummary>('/v1/query/events/fair/attendance')).body.arrived).toBe(3)
  })

  it("gives arrivals by the event's local hour and the latest decisions with names", async () => {
    const curve = await get<{ timeZone: string; hours: Array<{ hour: string; arrivals: number }> }>(
      '/v1/query/events/fair/arrivals',
    )
    expect(curve.body.timeZone).toBe('America/New_York')
    expect(curve.body.hours.reduce((n, h) => n + h.arrivals, 0)).toBe(3)
    const localHour = new Intl.DateTimeFormat('en-CA', {
      timeZone: 'America/New_York',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      hourCycle: 'h23',
    })
      .format(new Date(Date.now() - 120_000))
      .replace(', ', 'T')
    expect(curve.body.hours.map((h) => h.hour)).toContain(`${localHour}:00`)

    const feed = await get<{
      decisions: Array<{ gateId: string; participantId: string; reason: string | null }>
    }>('/v1/query/events/fair/decisions?limit=3')
    expect(feed.body.decisions).toHaveLength(3)
    expect(feed.body.decisions[0]).toMatchObject({ gateId: 'south', participantId: 'p1' })
    expect(feed.body.decisions.every((d) => d.gateId !== 'other')).toBe(true)

    // p3 comes in now; then a late upload holds an earlier admit of p3, five hours ago: p3
    // arrived then, and is counted once, in that hour
    const hourOf = (ts: number) =>
      `${new Intl.DateTimeFormat('en-CA', {
        timeZone: 'America/New_York',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        hourCycle: 'h23',
      })
        .format(new Date(ts))
        .replace(', ', 'T')}:00`
    const arrivalsAt = (hours: Array<{ hour: string; arrivals: number }>, hour: string) =>
      hours.find((h) => h.hour === hour)?.arrivals ?? 0
    const now = Date.now()
    await upload('north', [record('north', 3, now - 60_000)])
    const early = now - 5 * 3600_000
    await upload('south', [record('south', 3, early)])
    const moved = await get<{ hours: Array<{ hour: string; arrivals: number }> }>(
      '/v1/query/events/fair/arrivals',
    )
    expect(moved.body.hours.reduce((n, h) => n + h.arrivals, 0)).toBe(4)
    expect(arrivalsAt(moved.body.hours, hourOf(early))).toBe(1)
    expect(arrivalsAt(moved.body.hours, hourOf(now - 60_000))).toBe(
      arrivalsAt(curve.body.hours, hourOf(now - 60_000)),
    )
    expect((await get<AttendanceSummary>('/v1/query/events/fair/attendance')).body.arrived).toBe(4)
  })

  it("exports the event's check-ins as CSV, each stored once, none of another event", async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/v1/query/events/fair/export.csv',
      headers: { authorization: `Bearer ${OPS}` },
    })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toContain('text/csv')
    expect(res.headers['content-disposition']).toContain('attendance-fair.csv')
    const lines = res.body.trim().split('\n')
    expect(lines[0]).toBe(EXPORT_COLUMNS.join(','))
    // 4 + 2 first (the resend stored nothing), the annulment, p1's later admit, p3's two
    expect(lines).toHaveLength(1 + 10)
    expect(lines.filter((l) => l.includes(',p0,'))).toHaveLength(2)
    expect(res.body).not.toContain('p100')
    expect(res.body).toContain(',zone_full: Hall holds 8,')
    const missing = await app.inject({
      method: 'GET',
      url: '/v1/query/events/nope/export.csv',
      headers: { authorization: `Bearer ${OPS}` },
    })
    expect(missing.statusCode).toBe(404)
  })

  it('exports the same rows as Parquet, read back by a Parquet reader', async () => {
    // a decision by hand whose note holds backslashes (escaped in COPY's text) and whose actor is
    // not ASCII
    await upload('north', [
      record('north', 4, Date.now() - 5_000, {
        method: 'manual',
        actor: 'Zoë Ødegård',
        note: 'C:\\doors\\east gate',
      }),
    ])
    const csv = await app.inject({
      method: 'GET',
      url: '/v1/query/events/fair/export.csv',
      headers: { authorization: `Bearer ${OPS}` },
    })
    const res = await app.inject({
      method: 'GET',
      url: '/v1/query/events/fair/export.parquet',
      headers: { authorization: `Bearer ${OPS}` },
    })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-disposition']).toContain('attendance-fair.parquet')
    const bytes = res.rawPayload
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
    // the reader's GZIP is Node's zlib, as any reader's is its platform's
    const compressors = { GZIP: (input: Uint8Array) => new Uint8Array(gunzipSync(input)) }
    const rows = (await parquetReadObjects({ file, compressors })) as Array<Record<string, unknown>>
    const csvRows = csv.body.trim().split('\n').slice(1)
    expect(rows).toHaveLength(csvRows.length)
    expect(rows.some((r) => r['actor'] === 'Zoë Ødegård' && r['note'] === 'C:\\doors\\east gate')).toBe(true)
    const byId = new Map(rows.map((r) => [String(r['id']), r]))
    for (const line of csvRows) {
      // the CSV's last column is the id, and no exported text here holds a comma
      const fields = line.split(',')
      const row = byId.get(fields.at(-1) as string) as Record<string, unknown>
      expect(row, line).toBeDefined()
      // Postgres' "2026-12-05 01:02:03.456+00" as ISO 8601
      const csvTs = (fields[0] as string).replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')
      expect((row['ts'] as Date).getTime()).toBe(Date.parse(csvTs))
      EXPORT_COLUMNS.slice(1).forEach((c, k) => {
        const value = row[c] ?? ''
        expect(String(value), `${c} of ${line}`).toBe(fields[k + 1]?.replace(/^"|"$/g, '') ?? '')
      })
    }
  })

  it('finds participants by part of a name, an e-mail domain or a name without its accents', async () => {
    await importParticipants(
      pool,
      [
        {
          participantId: 'n1',
          token: 'ee00000000000001',
          status: 'active',
          name: 'José Müller',
          email: 'jose@fair.example',
        },
        {
          participantId: 'n2',
          token: 'ee00000000000002',
          status: 'active',
          name: 'Anna Schmidt',
          email: 'anna@mail.test',
        },
        {
          participantId: 'n3',
          token: 'ee00000000000003',
          status: 'active',
          name: 'Zoë 100%',
          email: 'zoe@fair.example',
        },
      ],
      { eventId: 'fair' },
    )
    await importParticipants(
      pool,
      [
        {
          participantId: 'n9',
          token: 'ee00000000000009',
          status: 'active',
          name: 'Jose Muller',
          email: 'jm@expo.test',
        },
      ],
      { eventId: 'expo' },
    )
    const ids = async (q: string, event?: string) =>
      (
        await get<{ participants: Array<{ id: string }> }>(
          `/v1/query/participants?q=${encodeURIComponent(q)}${event ? `&event=${event}` : ''}`,
        )
      ).body.participants
        .map((p) => p.id)
        .sort()
    expect(await ids('schm')).toEqual(['n2']) // part of a name
    expect(await ids('muller')).toEqual(['n1', 'n9']) // accents aside, every event
    expect(await ids('MÜLLER', 'fair')).toEqual(['n1']) // one event's
    expect(await ids('fair.example')).toEqual(['n1', 'n3']) // an e-mail domain
    expect(await ids('100%')).toEqual(['n3']) // % is a character here, not a wildcard
    expect(await ids('%')).toEqual(['n3'])
    expect(await ids('nobody-by-this-name')).toEqual([])
  })

  it('refuses without the token, and says which event does not exist', async () => {
    expect((await get('/v1/query/events/fair/attendance', 'wrong')).status).toBe(401)
    expect((await get('/v1/query/events/fair/export.csv', 'wrong')).status).toBe(401)
    expect((await get('/v1/query/events/nope/attendance')).status).toBe(404)
    expect((await get('/v1/query/events/bad%20id/attendance')).status).toBe(400)
  })
})
