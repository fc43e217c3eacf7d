import type { FastifyInstance } from 'fastify'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { putPolicy } from '../../../cloud/access/policies.js'
import type { EventReport } from '../../../cloud/attendance/report.js'
import { loadCloudConfig } from '../../../cloud/config.js'
import { createPool } from '../../../cloud/db/pool.js'
import { addGate } from '../../../cloud/gates/store.js'
import { buildApp } from '../../../cloud/http/app.js'
import { importParticipants } from '../../../cloud/participants/import.js'
import { eraseExpired } from '../../../cloud/participants/privacy.js'
import type { Checkin } from '../../../shared/checkin.js'
import { gateCheckins, uploadAs } from '../../support/checkins.js'
import { silentLog } from '../../support/helpers.js'
import { tempDatabase } from '../../support/pg-helpers.js'

const OPS = 'ops-token-for-the-privacy-test-01'
const BOOT = '0190f7a0-0000-7000-8000-000000000009'
const token = (i: number) => `ef${String(i).padStart(14, '0')}`

/**
 * An event's report, the erasure of one participant on request and the erasure of an event's
 * personal data past its retention, through the HTTP API on real Postgres: names and e-mails go,
 * the counts stay, and the audit trail says who erased what.
 */
describe("privacy and an event's report", () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let app: FastifyInstance
  const keys: Record<string, string> = {}

  const made = gateCheckins(BOOT)
  const record = (gate: string, i: number, ts: number, extra: Partial<Checkin> = {}): Checkin =>
    made({ gateId: gate, token: token(i), participantId: `q${i}`, ts, ...extra })
  const upload = (gate: string, records: Checkin[]) => uploadAs(app, keys[gate] as string, gate, records)
  const call = async <T>(method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown) => {
    const res = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${OPS}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { payload: JSON.stringify(body) } : {}),
    })
    const json = String(res.headers['content-type'] ?? '').includes('json')
    return { status: res.statusCode, body: (json ? res.json() : res.body) as T }
  }

  beforeAll(async () => {
    db = await tempDatabase()
    const config = loadCloudConfig({ DATABASE_URL: db.url, OPS_TOKEN: OPS })
    pool = createPool(config)
    app = await buildApp({ config, pool, log: silentLog, authCacheMs: 1 })
    keys['in'] = await addGate(pool, 'in', { eventId: 'fest' })
    keys['out'] = await addGate(pool, 'out', { eventId: 'fest' })
    keys['past'] = await addGate(pool, 'past', { eventId: 'past' })
    await importParticipants(
      pool,
      Array.from({ length: 6 }, (_, i) => ({
        participantId: `q${i}`,
        token: token(i),
        status: 'active' as const,
        name: `Person ${i}`,
        email: `person${i}@example.org`,
      })),
      { eventId: 'fest' },
    )
    await importParticipants(
      pool,
      [
        {
          participantId: 'old1',
          token: token(50),
          status: 'active',
          name: 'Old Guest',
          email: 'old@example.org',
        },
      ],
      { eventId: 'past' },
    )
    await putPolicy(pool, 'fest', {
      timeZone: 'UTC',
      zones: [{ id: 'hall', name: 'Hall' }],
      lanes: [
        { gate: 'in', to: 'hall' },
        { gate: 'out', from: 'hall' },
      ],
      rules: [{ id: 'all', name: 'Everyone', zone: 'hall' }],
    })
  })
  afterAll(async () => {
    await app?.close()
    await pool?.end()
    await db?.drop()
  })

  it('reports arrivals, decisions, denials by reason and the peak occupancy of each zone (by minute)', async () => {
    // minute by minute: four in, then two out, then one back in: at most four inside
    const t = Math.floor((Date.now() - 600_000) / 60_000) * 60_000
    await upload('in', [
      record('in', 0, t + 1_000, { zoneIn: 'hall' }),
      record('in', 1, t + 2_000, { zoneIn: 'hall' }),
      record('in', 2, t + 3_000, { zoneIn: 'hall' }),
      record('in', 3, t + 4_000, { zoneIn: 'hall' }),
      record('in', 5, t + 5_000, { decision: 'deny', reason: 'no_access' }),
      record('in', 0, t + 121_000, { zoneIn: 'hall' }),
    ])
    await upload('out', [
      record('out', 0, t + 61_000, { zoneOut: 'hall' }),
      record('out', 1, t + 62_000, { zoneOut: 'hall' }),
    ])
    const { status, body } = await call<EventReport>('GET', '/v1/query/events/fest/report')
    expect(status).toBe(200)
    expect(body).toMatchObject({
      eventId: 'fest',
      expected: 6,
      arrived: 4,
      denialsByReason: { no_access: 1 },
    })
    expect(body.decisions).toEqual({ admits: 7, denials: 1 })
    expect(body.peakOccupancy).toEqual([{ zone: 'hall', peak: 4, at: new Date(t).toISOString() }])
    expect(body.arrivalsByHour.reduce((n, h) => n + h.arrivals, 0)).toBe(4)
    expect(body.busiestHour?.arrivals).toBeGreaterThan(0)
  })

  it("erases one participant's name and e-mail on request: the counts stay, the trail says who", async () => {
    const erased = await call<{ participant: { erasedAt: string } }>(
      'POST',
      '/v1/events/fest/participants/q2/erase',
    )
    expect(erased.status).toBe(200)
    const row = await pool.query("SELECT name, email, erased_at FROM participants WHERE id = 'q2'")
    expect(row.rows[0]).toMatchObject({ name: null, email: null })
    expect(row.rows[0].erased_at).not.toBeNull()
    // no longer found by name, still counted
    const found = await call<{ participants: Array<{ id: string }> }>(
      'GET',
      '/v1/query/participants?q=person 2&event=fest',
    )
    expect(found.body.participants.map((p) => p.id)).not.toContain('q2')
    expect((await call<EventReport>('GET', '/v1/query/events/fest/report')).body.arrived).toBe(4)
    const csv = await call<string>('GET', '/v1/query/events/fest/export.csv')
    const q2 = csv.body.split('\n').filter((l) => l.includes(',q2,'))
    expect(q2).toHaveLength(1)
    expect(q2[0]).toContain(',q2,,admit,')
    const trail = await call<{ entries: Array<{ action: string; target: string; actor: string }> }>(
      'GET',
      '/v1/audit?event=fest&action=participant',
    )
    expect(trail.body.entries[0]).toMatchObject({
      action: 'participant.erase',
      target: 'q2',
      actor: 'ops token',
    })
    expect((await call('POST', '/v1/events/past/participants/q3/erase')).status).toBe(404)
  })

  it("erases an event's personal data once its retention has run out since its last check-in", async () => {
    await upload('past', [record('past', 50, Date.now() - 60_000, { participantId: 'old1' })])
    expect((await call('PUT', '/v1/events/past/retention', { days: 30 })).status).toBe(200)
    expect((await call('PUT', '/v1/events/past/retention', { days: 0 })).status).toBe(400)
    // within its retention: nothing goes
    expect(await eraseExpired(pool)).toEqual([])
    // the event as if it ended 31 days ago
    await pool.query(
      `UPDATE decision_minutes SET minute = minute - interval '31 days' WHERE event_id = 'past'`,
    )
    await pool.query(`UPDATE events SET created_at = created_at - interval '40 days' WHERE id = 'past'`)
    expect(await eraseExpired(pool)).toEqual([{ eventId: 'past', erased: 1 }])
    const old = await pool.query("SELECT name, email FROM participants WHERE id = 'old1'")
    expect(old.rows[0]).toEqual({ name: null, email: null })
    // the other event, with no retention, keeps its names; a second run erases nothing more
    const kept = await pool.query(
      "SELECT count(*)::int AS n FROM participants WHERE event_id = 'fest' AND name IS NOT NULL",
    )
    expect(kept.rows[0].n).toBe(5)
    expect(await eraseExpired(pool)).toEqual([])
    // the check-in and its count stay
    const report = await call<EventReport>('GET', '/v1/query/events/past/report')
    expect(report.body.arrived).toBe(1)
  })
})
