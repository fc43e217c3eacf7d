import type { FastifyInstance } from 'fastify'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { putPolicy } from '../../../cloud/access/policies.js'
import { loadCloudConfig } from '../../../cloud/config.js'
import { createPool } from '../../../cloud/db/pool.js'
import { addGate } from '../../../cloud/gates/store.js'
import { buildApp } from '../../../cloud/http/app.js'
import { importParticipants } from '../../../cloud/participants/import.js'
import { silentLog } from '../../support/helpers.js'
import { tempDatabase } from '../../support/pg-helpers.js'

const OPS = 'ops-token-for-the-occupancy-test'

/**
 * Occupancy and escrow at the cloud, on real Postgres: three entry gates and an exit gate of a
 * lounge with 10 places report their tallies over HTTP.
 */
describe('zone occupancy merged from the gates, and their allotments', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let app: FastifyInstance
  const keys: Record<string, string> = {}

  const report = async (gate: string, tallies: Record<string, unknown>) => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/sync/occupancy',
      headers: { authorization: `Bearer ${keys[gate]}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ tallies }),
    })
    expect(res.statusCode, res.body).toBe(200)
    return res.json() as { allotments: Record<string, { limit: number }>; occupancy: Record<string, number> }
  }
  const t = (entries: number, exits = 0, annulled = 0) => ({ period: '', entries, exits, annulled })

  beforeAll(async () => {
    db = await tempDatabase()
    const config = loadCloudConfig({ DATABASE_URL: db.url, OPS_TOKEN: OPS })
    pool = createPool(config)
    app = await buildApp({ config, pool, log: silentLog, authCacheMs: 1 })
    for (const g of ['in-1', 'in-2', 'in-3', 'out-1']) keys[g] = await addGate(pool, g, { eventId: 'expo' })
    await putPolicy(pool, 'expo', {
      timeZone: 'UTC',
      zones: [{ id: 'lounge', name: 'Lounge', capacity: 10 }],
      lanes: [
        { gate: 'in-1', to: 'lounge' },
        { gate: 'in-2', to: 'lounge' },
        { gate: 'in-3', to: 'lounge' },
        { gate: 'out-1', from: 'lounge' },
      ],
      rules: [{ id: 'all', name: 'Everyone', zone: 'lounge' }],
    })
  })
  afterAll(async () => {
    await app?.close()
    await pool?.end()
    await db?.drop()
  })

  it('hands out the free places and never more, and follows exits', async () => {
    // the first gate heard gets its share of the 10 places, and every entry gate is allotted at once
    const first = await report('in-1', {})
    expect(first.allotments['lounge']?.limit).toBe(4)
    const limits = async () =>
      Object.fromEntries(
        (
          await pool.query<{ gate_id: string; lim: string }>(
            'SELECT gate_id, lim FROM zone_allotments ORDER BY gate_id',
          )
        ).rows.map((r) => [r.gate_id, Number(r.lim)]),
      )
    expect(await limits()).toEqual({ 'in-1': 4, 'in-2': 3, 'in-3': 3 })
    // the gates use their places; nothing is free, so nothing more is given
    await report('in-2', { lounge: t(3) })
    const full = await report('in-1', { lounge: t(4) })
    expect(full.occupancy['lounge']).toBe(7)
    expect(full.allotments['lounge']?.limit).toBe(4)
    // three people leave: three places for the gates holding the fewest unused ones
    const out = await report('out-1', { lounge: t(0, 3) })
    expect(out.occupancy['lounge']).toBe(4)
    expect(out.allotments).toEqual({})
    await report('in-1', { lounge: t(4) })
    const l = await limits()
    const sum = (l['in-1'] ?? 0) + (l['in-2'] ?? 0) + (l['in-3'] ?? 0)
    // within capacity: limits less exits heard of
    expect(sum - 3).toBeLessThanOrEqual(10)
    expect(sum).toBe(13)
  })

  it('a resent or older report changes nothing', async () => {
    const before = await report('in-2', { lounge: t(3) })
    await report('in-2', { lounge: t(1) })
    const again = await report('in-2', { lounge: t(3) })
    expect(again.occupancy).toEqual(before.occupancy)
    const res = await app.inject({
      method: 'GET',
      url: '/v1/query/events/expo/occupancy',
      headers: { authorization: `Bearer ${OPS}` },
    })
    const zones = (
      res.json() as {
        zones: Array<{ zone: string; occupancy: number; gates: Array<{ gateId: string; entries: number }> }>
      }
    ).zones
    expect(zones[0]).toMatchObject({ zone: 'lounge', occupancy: 4 })
    expect(zones[0]?.gates.find((g) => g.gateId === 'in-2')?.entries).toBe(3)
  })

  it('answers "what would happen if" with the gates\' engine, naming what it cannot know', async () => {
    await importParticipants(
      pool,
      [
        { token: 'a1a1', participantId: 'p-guest', status: 'active', category: 'guest' },
        { token: 'b2b2', participantId: 'p-gone', status: 'revoked', category: 'guest' },
      ],
      { eventId: 'expo' },
    )
    const ask = (body: Record<string, unknown>) =>
      app.inject({
        method: 'POST',
        url: '/v1/events/expo/access-policy/evaluate',
        headers: { authorization: `Bearer ${OPS}`, 'content-type': 'application/json' },
        payload: JSON.stringify(body),
      })
    const yes = await ask({ gateId: 'in-1', participantId: 'p-guest' })
    expect(yes.statusCode, yes.body).toBe(200)
    expect(yes.json()).toMatchObject({
      summary: 'admit',
      verdict: { decision: 'admit', enters: 'lounge', ruleId: 'all' },
      caveats: [expect.stringMatching(/passages are known to the gates only/)],
    })
    expect((await ask({ gateId: 'side-door', participantId: 'p-guest' })).json()).toMatchObject({
      summary: 'no_lane: gate side-door has no lane in access policy version 1',
    })
    expect((await ask({ gateId: 'in-1', participantId: 'p-gone' })).json()).toMatchObject({
      summary: 'deny: the participant is revoked',
    })
    expect((await ask({ gateId: 'in-1', participantId: 'p-nobody' })).statusCode).toBe(404)
    expect((await ask({ gateId: 'in-1' })).statusCode).toBe(400)
  })

  it('refuses a malformed report with a clear error', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/sync/occupancy',
      headers: { authorization: `Bearer ${keys['in-1']}`, 'content-type': 'application/json' },
      payload: JSON.stringify({
        tallies: { lounge: { period: 'soon', entries: -1, exits: 0, annulled: 0 } },
      }),
    })
    expect(res.statusCode).toBe(400)
    expect(res.body).toMatch(/tallies\.lounge\.period/)
  })
})
