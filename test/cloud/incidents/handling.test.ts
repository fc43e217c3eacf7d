import type { FastifyInstance } from 'fastify'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadCloudConfig } from '../../../cloud/config.js'
import { createPool } from '../../../cloud/db/pool.js'
import { addGate } from '../../../cloud/gates/store.js'
import { buildApp } from '../../../cloud/http/app.js'
import { silentLog } from '../../support/helpers.js'
import { tempDatabase } from '../../support/pg-helpers.js'

const OPS = 'ops-token-for-the-incident-handling-test'

interface Incident {
  id: number
  kind: string
  gateId: string
  acknowledgedAt: string | null
  acknowledgedBy: string | null
  resolvedAt: string | null
  resolvedBy: string | null
  note: string | null
}

/** Incidents acknowledged and resolved by people, on real Postgres through the HTTP API. */
describe('handling incidents', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let app: FastifyInstance
  const ids: Record<string, number> = {}

  const call = async (method: 'GET' | 'POST', url: string, body?: unknown, auth = OPS) => {
    const res = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${auth}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { payload: JSON.stringify(body) } : {}),
    })
    return { status: res.statusCode, body: res.json() as Record<string, unknown> }
  }
  const listed = async (query: string) =>
    ((await call('GET', `/v1/incidents?${query}`)).body['incidents'] as Incident[])
      .map((i) => Number(i.id))
      .sort()

  beforeAll(async () => {
    db = await tempDatabase()
    const config = loadCloudConfig({ DATABASE_URL: db.url, OPS_TOKEN: OPS })
    pool = createPool(config)
    app = await buildApp({ config, pool, log: silentLog, authCacheMs: 1 })
    await addGate(pool, 'hall-a', { eventId: 'fair' })
    await addGate(pool, 'expo-a', { eventId: 'expo' })
    // what the ingest raises (cloud/ingest): set up here, the handling is what is under test
    for (const [name, gate, kind] of [
      ['double', 'hall-a', 'double_entry'],
      ['passback', 'hall-a', 'anti_passback'],
      ['elsewhere', 'expo-a', 'double_entry'],
    ] as const) {
      const r = await pool.query<{ id: string }>(
        `INSERT INTO incidents (kind, gate_id, participant_id, record_id, record_ts)
         VALUES ($1, $2, 'p1', gen_random_uuid(), now()) RETURNING id`,
        [kind, gate],
      )
      ids[name] = Number(r.rows[0]?.id)
    }
  })
  afterAll(async () => {
    await app?.close()
    await pool?.end()
    await db?.drop()
  })

  it('acknowledges: someone is on it, and who', async () => {
    const r = await call('POST', `/v1/incidents/${ids['double']}/acknowledge`, {
      note: 'steward sent to door A',
    })
    expect(r.status).toBe(200)
    const incident = r.body['incident'] as Incident
    expect(incident.acknowledgedAt).not.toBeNull()
    expect(incident.acknowledgedBy).toMatch(/^ops token from /)
    expect(incident.note).toBe('steward sent to door A')
    expect(incident.resolvedAt).toBeNull()
    expect(await listed('event=fair&state=acknowledged')).toEqual([ids['double']])
    expect(await listed('event=fair&state=unacknowledged')).toEqual([ids['passback']])
    expect(await listed('event=fair')).toEqual([ids['double'], ids['passback']].sort())
  })

  it('resolves only with a note saying what was done, and keeps it', async () => {
    const bare = await call('POST', `/v1/incidents/${ids['passback']}/resolve`, {})
    expect(bare.status).toBe(400)
    const r = await call('POST', `/v1/incidents/${ids['passback']}/resolve`, {
      note: 'same person, badge shared with a colleague; badge replaced',
    })
    expect(r.status).toBe(200)
    const incident = r.body['incident'] as Incident
    expect(incident.resolvedAt).not.toBeNull()
    expect(incident.resolvedBy).toMatch(/^ops token from /)
    expect(incident.acknowledgedAt).not.toBeNull() // resolving acknowledges too
    expect(await listed('event=fair&state=resolved')).toEqual([ids['passback']])
    expect(await listed('event=fair&state=open')).toEqual([ids['double']])
    // resolving again changes nothing
    const again = await call('POST', `/v1/incidents/${ids['passback']}/resolve`, { note: 'other' })
    expect((again.body['incident'] as Incident).note).toBe(incident.note)
  })

  it("lists one event's incidents apart, and by kind", async () => {
    expect(await listed('event=expo&state=all')).toEqual([ids['elsewhere']])
    expect(await listed('state=all&kind=anti_passback')).toEqual([ids['passback']])
    expect(await listed('open=false')).toEqual(Object.values(ids).sort())
  })

  it('refuses an unknown incident, a bad body and a missing token', async () => {
    expect((await call('POST', '/v1/incidents/999999/acknowledge', {})).status).toBe(404)
    expect((await call('POST', '/v1/incidents/abc/resolve', { note: 'x' })).status).toBe(400)
    expect(
      (await call('POST', `/v1/incidents/${ids['double']}/resolve`, { note: 'x', extra: 1 })).status,
    ).toBe(400)
    expect(
      (await call('POST', `/v1/incidents/${ids['double']}/resolve`, { note: 'x' }, 'wrong')).status,
    ).toBe(401)
    expect((await call('GET', '/v1/incidents?state=bogus')).status).toBe(400)
  })
})
