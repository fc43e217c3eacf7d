import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FakeClock } from '../../../agent/clock.js'
import { Validator } from '../../../agent/pipeline/validator.js'
import { type Db, openDatabase } from '../../../agent/store/db.js'
import { RosterStore } from '../../../agent/store/roster-store.js'
import { loadCloudConfig } from '../../../cloud/config.js'
import { createPool } from '../../../cloud/db/pool.js'
import { addGate } from '../../../cloud/gates/store.js'
import { buildApp } from '../../../cloud/http/app.js'
import { importParticipants } from '../../../cloud/participants/import.js'
import type { RosterDelta } from '../../../shared/sync.js'
import { silentLog, tempDir } from '../../support/helpers.js'
import { tempDatabase } from '../../support/pg-helpers.js'

const OPS = 'ops-token-for-the-badge-actions-test'

/**
 * Badge actions from the console's API, on real Postgres, followed to a gate's real SQLite roster:
 * what the gate pulls after a revoke, a reinstatement and a replacement is what its validator
 * decides by.
 */
describe('revoking and replacing badges', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let app: FastifyInstance
  let gateKey = ''
  const tmp = tempDir()
  let gateDb: Db
  let roster: RosterStore
  let validator: Validator

  const act = async (url: string, body?: unknown, auth = OPS) => {
    const res = await app.inject({
      method: 'POST',
      url,
      headers: { authorization: `Bearer ${auth}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { payload: JSON.stringify(body) } : {}),
    })
    return { status: res.statusCode, body: res.json() as Record<string, unknown> }
  }
  /** one roster pull of the gate, applied to its SQLite roster as the agent's puller does */
  const pull = async () => {
    const res = await app.inject({
      method: 'GET',
      url: `/v1/roster?since=${roster.cloudCursor()}`,
      headers: { authorization: `Bearer ${gateKey}` },
    })
    expect(res.statusCode).toBe(200)
    const delta = res.json() as RosterDelta
    roster.applyDelta(delta.changes, delta.cursor)
    return delta
  }
  const decide = (token: string) => {
    const v = validator.validate(token)
    return `${v.decision}${v.reason ? `:${v.reason}` : ''}`
  }

  beforeAll(async () => {
    db = await tempDatabase()
    const config = loadCloudConfig({ DATABASE_URL: db.url, OPS_TOKEN: OPS })
    pool = createPool(config)
    app = await buildApp({ config, pool, log: silentLog, authCacheMs: 1 })
    gateKey = await addGate(pool, 'door', { eventId: 'fair' })
    await importParticipants(
      pool,
      [
        { participantId: 'amy', token: 'aa00000000000001', status: 'active' },
        { participantId: 'ben', token: 'bb00000000000001', status: 'active' },
      ],
      { eventId: 'fair' },
    )
    await importParticipants(pool, [{ participantId: 'cal', token: 'cc00000000000001', status: 'active' }], {
      eventId: 'expo',
    })
    gateDb = openDatabase(path.join(tmp.dir, 'agent.db'))
    const clock = new FakeClock()
    roster = new RosterStore(gateDb, clock)
    validator = new Validator(roster, { maxEntries: 100, negativeTtlMs: 0, clock })
    await pull()
    expect(decide('aa00000000000001')).toBe('admit')
  })
  afterAll(async () => {
    gateDb?.close()
    tmp.cleanup()
    await app?.close()
    await pool?.end()
    await db?.drop()
  })

  it('a revoked badge is denied from the next pull, and admitted again once reinstated', async () => {
    const r = await act('/v1/events/fair/participants/amy/revoke')
    expect(r.status).toBe(200)
    expect(r.body['participant']).toMatchObject({ id: 'amy', status: 'revoked' })
    await pull()
    expect(decide('aa00000000000001')).toBe('deny:revoked')
    await act('/v1/events/fair/participants/amy/reinstate')
    await pull()
    expect(decide('aa00000000000001')).toBe('admit')
  })

  it('a replaced badge: the new one admitted and the old one revoked, both in one pull', async () => {
    const r = await act('/v1/events/fair/participants/ben/replace', { token: 'BB00000000000002' })
    expect(r.status).toBe(200)
    expect(r.body['participant']).toMatchObject({ id: 'ben', token: 'bb00000000000002', status: 'active' })
    const delta = await pull()
    expect(delta.changes.filter((c) => c.participantId === 'ben')).toHaveLength(1)
    expect(decide('bb00000000000002')).toBe('admit')
    // whoever finds the lost badge is denied as revoked, not as an unknown badge
    expect(decide('bb00000000000001')).toBe('deny:revoked')
    // and it stays revoked when the participant changes again
    expect((await act('/v1/events/fair/participants/ben/revoke')).status).toBe(200)
    expect((await act('/v1/events/fair/participants/ben/reinstate')).status).toBe(200)
    await pull()
    expect(decide('bb00000000000001')).toBe('deny:revoked')
    expect(decide('bb00000000000002')).toBe('admit')
  })

  it("refuses another participant's token, another event's participant, and no token", async () => {
    const taken = await act('/v1/events/fair/participants/ben/replace', { token: 'aa00000000000001' })
    expect(taken.status).toBe(409)
    expect((await act('/v1/events/fair/participants/cal/revoke')).status).toBe(404) // expo's
    expect((await act('/v1/events/fair/participants/ben/replace', { token: 'xyz' })).status).toBe(400)
    expect((await act('/v1/events/fair/participants/ben/revoke', undefined, 'wrong')).status).toBe(401)
    await pull()
    expect(decide('bb00000000000002')).toBe('admit') // nothing changed
  })
})
