import type { FastifyInstance } from 'fastify'
import type pg from 'pg'
import { v7 as uuidv7 } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadCloudConfig } from '../../../cloud/config.js'
import { createPool } from '../../../cloud/db/pool.js'
import { addGate } from '../../../cloud/gates/store.js'
import { buildApp } from '../../../cloud/http/app.js'
import { importParticipants } from '../../../cloud/participants/import.js'
import type { Checkin } from '../../../shared/checkin.js'
import { silentLog } from '../../support/helpers.js'
import { tempDatabase } from '../../support/pg-helpers.js'

const OPS = 'ops-token-for-the-tokens-per-event'
const BOOT = '0190f7a0-0000-7000-8000-00000000000a'
const SHARED = 'cafe000000000001'

/**
 * A badge's token is unique within an event, not across events: two events may each give the same
 * token to one of theirs (badges reused), while within an event it stays one holder's; the ingest
 * still refuses another event's badge, and the token look-up asks which event.
 */
describe('tokens unique within an event', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let app: FastifyInstance
  let gateKey = ''
  let seq = 0

  const call = async (method: 'GET' | 'POST', url: string, body?: unknown, auth = `Bearer ${OPS}`) => {
    const res = await app.inject({
      method,
      url,
      headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { payload: JSON.stringify(body) } : {}),
    })
    return { status: res.statusCode, body: res.json() as Record<string, unknown> }
  }
  const record = (participantId: string, token: string): Checkin => ({
    id: uuidv7(),
    gateId: 'fair-door',
    token,
    participantId,
    method: 'ble',
    decision: 'admit',
    reason: null,
    rssi: -50,
    ts: Date.now() - 1_000,
    monoMs: 1_000 + seq,
    bootId: BOOT,
    bootSeq: ++seq,
    rosterVersion: 1,
  })

  beforeAll(async () => {
    db = await tempDatabase()
    const config = loadCloudConfig({ DATABASE_URL: db.url, OPS_TOKEN: OPS })
    pool = createPool(config)
    app = await buildApp({ config, pool, log: silentLog, authCacheMs: 1 })
    gateKey = await addGate(pool, 'fair-door', { eventId: 'fair' })
  })
  afterAll(async () => {
    await app?.close()
    await pool?.end()
    await db?.drop()
  })

  it('lets two events give one token to one of theirs each, and no event to two of its own', async () => {
    await importParticipants(pool, [{ participantId: 'f-1', token: SHARED, status: 'active' }], {
      eventId: 'fair',
    })
    await importParticipants(pool, [{ participantId: 'x-1', token: SHARED, status: 'active' }], {
      eventId: 'expo',
    })
    await expect(
      importParticipants(pool, [{ participantId: 'f-2', token: SHARED, status: 'active' }], {
        eventId: 'fair',
      }),
    ).rejects.toThrow(/two active participants of one event/)
    // replacing a badge: a token of this event's is refused, another event's is free here
    await importParticipants(
      pool,
      [
        { participantId: 'f-3', token: 'cafe000000000003', status: 'active' },
        { participantId: 'f-4', token: 'cafe000000000004', status: 'active' },
      ],
      { eventId: 'fair' },
    )
    await importParticipants(pool, [{ participantId: 'x-5', token: 'cafe000000000005', status: 'active' }], {
      eventId: 'expo',
    })
    expect((await call('POST', '/v1/events/fair/participants/f-3/replace', { token: SHARED })).status).toBe(
      409,
    )
    expect(
      (await call('POST', '/v1/events/fair/participants/f-4/replace', { token: 'cafe000000000005' })).status,
    ).toBe(200)
  })

  it('asks which event a token held in several is looked up in', async () => {
    const both = await call('GET', `/v1/query/tokens/${SHARED}`)
    expect(both.status).toBe(409)
    expect(JSON.stringify(both.body)).not.toContain('x-1')
    expect((await call('GET', `/v1/query/tokens/${SHARED}?event=fair`)).body).toMatchObject({
      id: 'f-1',
      eventId: 'fair',
    })
    expect((await call('GET', `/v1/query/tokens/${SHARED}?event=expo`)).body).toMatchObject({
      id: 'x-1',
      eventId: 'expo',
    })
    expect((await call('GET', '/v1/query/tokens/cafe000000000003')).body).toMatchObject({ id: 'f-3' })
  })

  it("stores an admit of a token this event holds too, and refuses another event's badge", async () => {
    const ok = await call(
      'POST',
      '/v1/sync/checkins',
      {
        gateId: 'fair-door',
        sentAt: Date.now(),
        records: [record('f-1', SHARED), record('f-4', 'cafe000000000005')],
      },
      `Bearer ${gateKey}`,
    )
    expect(ok.status).toBe(200)
    expect(ok.body).toMatchObject({ accepted: 2 })
    // f-3 with f-1's badge (swapped at the door): a badge of this event, though expo has it too
    const swapped = await call(
      'POST',
      '/v1/sync/checkins',
      { gateId: 'fair-door', sentAt: Date.now(), records: [record('f-3', SHARED)] },
      `Bearer ${gateKey}`,
    )
    expect(swapped.status).toBe(200)
    // f-3 with a badge that only expo gives out: not this event's
    await importParticipants(pool, [{ participantId: 'x-9', token: 'cafe000000000009', status: 'active' }], {
      eventId: 'expo',
    })
    const foreign = await call(
      'POST',
      '/v1/sync/checkins',
      {
        gateId: 'fair-door',
        sentAt: Date.now(),
        records: [record('f-3', 'cafe000000000009')],
      },
      `Bearer ${gateKey}`,
    )
    expect(foreign.status).toBe(400)
    expect(JSON.stringify(foreign.body)).toContain('token')
  })
})
