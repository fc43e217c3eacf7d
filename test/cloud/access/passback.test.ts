import type { FastifyInstance } from 'fastify'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { putPolicy } from '../../../cloud/access/policies.js'
import { loadCloudConfig } from '../../../cloud/config.js'
import { createPool } from '../../../cloud/db/pool.js'
import { addGate } from '../../../cloud/gates/store.js'
import { buildApp } from '../../../cloud/http/app.js'
import { importParticipants } from '../../../cloud/participants/import.js'
import type { Checkin } from '../../../shared/checkin.js'
import { gateCheckins, uploadAs } from '../../support/checkins.js'
import { silentLog } from '../../support/helpers.js'
import { tempDatabase } from '../../support/pg-helpers.js'

const OPS = 'ops-token-for-the-passback-test'
const BOOT = '0190f7a0-0000-7000-8000-000000000001'
const TOKENS: Record<string, string> = {
  ann: 'aaaa0000aaaa0000',
  bob: 'bbbb0000bbbb0000',
  cat: 'cccc0000cccc0000',
}

/**
 * Anti-passback across a partition, at the cloud, on real Postgres: two entry gates of a hall that
 * could not hear each other both let the same person in; their records arrive in any order, an
 * exit gate's record late, and the incidents follow what the records say.
 */
describe('anti-passback violations that slipped through a partition become incidents', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let app: FastifyInstance
  const keys: Record<string, string> = {}

  const made = gateCheckins(BOOT)
  const record = (gate: string, participantId: string, ts: number, extra: Partial<Checkin>): Checkin =>
    made({
      gateId: gate,
      token: TOKENS[participantId] as string,
      participantId,
      ts,
      policyVersion: 1,
      ...extra,
    })
  const upload = (gate: string, records: Checkin[]) => uploadAs(app, keys[gate] as string, gate, records)
  const incidents = async () =>
    (
      await pool.query<{
        record_id: string
        other_record_id: string
        resolved: boolean
        detail: { zone: string }
      }>(
        `SELECT record_id, other_record_id, resolved_at IS NOT NULL AS resolved, detail
           FROM incidents WHERE kind = 'anti_passback' ORDER BY id`,
      )
    ).rows

  beforeAll(async () => {
    db = await tempDatabase()
    const config = loadCloudConfig({ DATABASE_URL: db.url, OPS_TOKEN: OPS })
    pool = createPool(config)
    app = await buildApp({ config, pool, log: silentLog, authCacheMs: 1 })
    for (const g of ['east', 'west', 'exit', 'lounge-door'])
      keys[g] = await addGate(pool, g, { eventId: 'fair' })
    await importParticipants(
      pool,
      Object.entries(TOKENS).map(([participantId, token]) => ({
        participantId,
        token,
        status: 'active' as const,
      })),
      { eventId: 'fair' },
    )
    await putPolicy(pool, 'fair', {
      timeZone: 'UTC',
      zones: [
        { id: 'hall', name: 'Hall' },
        { id: 'lounge', name: 'Lounge' },
      ],
      lanes: [
        { gate: 'east', to: 'hall' },
        { gate: 'west', to: 'hall' },
        { gate: 'exit', from: 'hall' },
        { gate: 'lounge-door', from: 'hall', to: 'lounge' },
      ],
      rules: [
        { id: 'hall-once', name: 'Hall', zone: 'hall', antiPassback: true },
        { id: 'lounge', name: 'Lounge', zone: 'lounge' },
      ],
    })
  })
  afterAll(async () => {
    await app?.close()
    await pool?.end()
    await db?.drop()
  })

  it('raises one incident per second entry, whatever order the gates upload in, and never twice', async () => {
    const t0 = Date.now() - 60_000
    const east = record('east', 'ann', t0, { zoneIn: 'hall', ruleId: 'hall-once' })
    const west = record('west', 'ann', t0 + 5_000, { zoneIn: 'hall', ruleId: 'hall-once' })
    // the later entry uploads first: nothing before it yet, no incident
    await upload('west', [west])
    expect(await incidents()).toEqual([])
    await upload('east', [east])
    expect(await incidents()).toEqual([
      {
        record_id: west.id,
        other_record_id: east.id,
        resolved: false,
        detail: expect.objectContaining({ zone: 'hall' }),
      },
    ])
    // a resend changes nothing
    await upload('east', [east])
    await upload('west', [west])
    expect(await incidents()).toHaveLength(1)
    // and the incident is in the ops API with the rule that was broken
    const res = await app.inject({
      method: 'GET',
      url: '/v1/incidents?kind=anti_passback',
      headers: { authorization: `Bearer ${OPS}` },
    })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.body).toContain('hall-once')
  })

  it('resolves the incident when an exit between the two entries arrives late', async () => {
    const t0 = Date.now() - 50_000
    const first = record('east', 'bob', t0, { zoneIn: 'hall', ruleId: 'hall-once' })
    const second = record('west', 'bob', t0 + 10_000, { zoneIn: 'hall', ruleId: 'hall-once' })
    await upload('east', [first])
    await upload('west', [second])
    const raised = (await incidents()).filter((i) => i.record_id === second.id)
    expect(raised).toEqual([expect.objectContaining({ resolved: false })])
    // the exit gate was cut off longer: bob left in between
    await upload('exit', [record('exit', 'bob', t0 + 4_000, { zoneOut: 'hall' })])
    expect((await incidents()).filter((i) => i.record_id === second.id)).toEqual([
      expect.objectContaining({ resolved: true }),
    ])
  })

  it('does not count an annulled entry, nor entries into a zone without anti-passback', async () => {
    const t0 = Date.now() - 40_000
    const annulled = record('east', 'cat', t0, { zoneIn: 'hall', ruleId: 'hall-once' })
    const annul = record('east', 'cat', t0 + 3_000, {
      decision: 'deny',
      reason: 'not_passed',
      zoneIn: 'hall',
      ruleId: 'hall-once',
      annuls: annulled.id,
    })
    await upload('east', [annulled, annul])
    await upload('west', [record('west', 'cat', t0 + 6_000, { zoneIn: 'hall', ruleId: 'hall-once' })])
    // into the lounge twice (no anti-passback there): no incident either
    await upload('lounge-door', [
      record('lounge-door', 'cat', t0 + 8_000, { zoneIn: 'lounge', zoneOut: 'hall', ruleId: 'lounge' }),
      record('lounge-door', 'cat', t0 + 9_000, { zoneIn: 'lounge', zoneOut: 'hall', ruleId: 'lounge' }),
    ])
    // (nor a double entry: admits at two gates are how people move between a venue's zones)
    const cats = await pool.query("SELECT kind FROM incidents WHERE participant_id = 'cat'")
    expect(cats.rows).toEqual([])
    // the cloud's count of admits leaves the annulled one out: east let in ann, bob and cat, and
    // cat's was annulled
    const since = new Date(t0 - 3_600_000).toISOString()
    const counts = await app.inject({
      method: 'GET',
      url: `/v1/query/gates/counts?since=${since}`,
      headers: { authorization: `Bearer ${OPS}` },
    })
    expect(counts.statusCode, counts.body).toBe(200)
    expect(counts.json().gates).toContainEqual({ gateId: 'east', count: 4, admits: 2 })
  })
})
