import type { FastifyInstance } from 'fastify'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadCloudConfig } from '../../../cloud/config.js'
import { createPool } from '../../../cloud/db/pool.js'
import { addGate } from '../../../cloud/gates/store.js'
import { buildApp } from '../../../cloud/http/app.js'
import { silentLog } from '../../support/helpers.js'
import { tempDatabase } from '../../support/pg-helpers.js'
import { ADMITS, EXPECTED, PUBLIC_OR_GATES } from './route-access.js'

const OPS = 'ops-token-for-the-roles-test-0123'
const PASSWORD = 'a long enough passphrase'

/** Accounts, sessions, roles, event scope and the audit trail, through the HTTP API on real Postgres. */
describe('people, roles and the audit trail', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let app: FastifyInstance
  const cookie: Record<string, string> = {}
  let incidentOfFair = 0
  let incidentOfExpo = 0

  const call = async (
    method: string,
    url: string,
    o: { body?: unknown; as?: string; bearer?: string; origin?: string } = {},
  ) => {
    const headers: Record<string, string> = {}
    if (o.as) headers['cookie'] = `gate_session=${cookie[o.as]}`
    if (o.bearer) headers['authorization'] = `Bearer ${o.bearer}`
    if (o.origin) headers['origin'] = o.origin
    if (o.body !== undefined) headers['content-type'] = 'application/json'
    const res = await app.inject({
      method: method as 'GET',
      url,
      headers,
      ...(o.body !== undefined ? { payload: JSON.stringify(o.body) } : {}),
    })
    let body: Record<string, unknown> = {}
    try {
      body = res.json()
    } catch {
      // a CSV export
    }
    return { status: res.statusCode, body, headers: res.headers }
  }
  const logIn = async (login: string) => {
    const r = await call('POST', '/v1/session', { body: { login, password: PASSWORD } })
    expect(r.status).toBe(200)
    const set = String(r.headers['set-cookie'])
    expect(set).toMatch(/HttpOnly/)
    expect(set).toMatch(/SameSite=Strict/)
    cookie[login] = /gate_session=([^;]+)/.exec(set)?.[1] as string
  }

  beforeAll(async () => {
    db = await tempDatabase()
    const config = loadCloudConfig({
      DATABASE_URL: db.url,
      OPS_TOKEN: OPS,
      FLEET_COMMAND_SECRET: 'command-secret-of-the-roles-test',
      // the matrix below fails to authenticate on purpose, many times from one address
      AUTH_FAILURES_PER_MIN: '0',
    })
    pool = createPool(config)
    app = await buildApp({ config, pool, log: silentLog, authCacheMs: 1 })
    await addGate(pool, 'fair-1', { eventId: 'fair' })
    await addGate(pool, 'expo-1', { eventId: 'expo' })
    await pool.query(
      `INSERT INTO events (id, name) VALUES ('fair', 'Fair'), ('expo', 'Expo') ON CONFLICT DO NOTHING`,
    )
    await pool.query(
      `INSERT INTO participants (id, event_id, token, status, name) VALUES
         ('f-1', 'fair', 'aaaa0001', 'active', 'Ana Fair'), ('e-1', 'expo', 'bbbb0001', 'active', 'Ana Expo'),
         ('f-9', 'fair', 'aaaa0009', 'active', 'To Erase'), ('e-9', 'expo', 'bbbb0009', 'active', 'To Erase')`,
    )
    const inc = await pool.query<{ id: string; gate_id: string }>(
      `INSERT INTO incidents (kind, gate_id, participant_id, record_id, record_ts)
       VALUES ('double_entry', 'fair-1', 'f-1', gen_random_uuid(), now()),
              ('double_entry', 'expo-1', 'e-1', gen_random_uuid(), now()) RETURNING id, gate_id`,
    )
    incidentOfFair = Number(inc.rows.find((r) => r.gate_id === 'fair-1')?.id)
    incidentOfExpo = Number(inc.rows.find((r) => r.gate_id === 'expo-1')?.id)
  })
  afterAll(async () => {
    await app?.close()
    await pool?.end()
    await db?.drop()
  })

  it('the ops token makes the first ops account, and is refused once one exists', async () => {
    expect((await call('GET', '/v1/accounts', { bearer: OPS })).status).toBe(200)
    const made = await call('POST', '/v1/accounts', {
      bearer: OPS,
      body: { login: 'olga', displayName: 'Olga Ops', role: 'ops', password: PASSWORD },
    })
    expect(made.status).toBe(201)
    app.accountsChanged()
    const refused = await call('GET', '/v1/accounts', { bearer: OPS })
    expect(refused.status).toBe(401)
    expect(String((refused.body['error'] as { message: string }).message)).toMatch(/first ops account/)
    await logIn('olga')
    for (const a of [
      { login: 'fiona', displayName: 'Fiona Fair', role: 'organiser', password: PASSWORD, events: ['fair'] },
      { login: 'tom', displayName: 'Tom Tech', role: 'technician', password: PASSWORD },
    ])
      expect((await call('POST', '/v1/accounts', { as: 'olga', body: a })).status).toBe(201)
    await logIn('fiona')
    await logIn('tom')
    const me = await call('GET', '/v1/session', { as: 'fiona' })
    expect(me.body).toMatchObject({ actor: 'fiona', role: 'organiser', events: ['fair'] })
  })

  it('refuses a wrong password, a short one, an organiser without events and a taken login', async () => {
    expect(
      (await call('POST', '/v1/session', { body: { login: 'fiona', password: 'not it at all' } })).status,
    ).toBe(401)
    expect(
      (await call('POST', '/v1/session', { body: { login: 'nobody', password: PASSWORD } })).status,
    ).toBe(401)
    const bad = [
      { login: 'x1', displayName: 'X', role: 'ops', password: 'short' },
      { login: 'x2', displayName: 'X', role: 'organiser', password: PASSWORD },
    ]
    for (const body of bad)
      expect((await call('POST', '/v1/accounts', { as: 'olga', body })).status).toBe(400)
    const taken = { login: 'fiona', displayName: 'F2', role: 'technician', password: PASSWORD }
    expect((await call('POST', '/v1/accounts', { as: 'olga', body: taken })).status).toBe(409)
    const stored = await pool.query<{ password_hash: string }>(
      "SELECT password_hash FROM accounts WHERE login = 'fiona'",
    )
    expect(stored.rows[0]?.password_hash).toMatch(/^scrypt\$/)
    expect(stored.rows[0]?.password_hash).not.toContain(PASSWORD)
  })

  it('names every route with what it asks, and each role gets exactly that', async () => {
    const guarded = app
      .routeTable()
      .filter((r) => r.access !== undefined && r.method !== 'HEAD')
      .map((r) => [`${r.method} ${r.url}`, r.access] as const)
    expect(Object.fromEntries(guarded)).toEqual(EXPECTED)
    const open = app
      .routeTable()
      .filter((r) => r.access === undefined && r.method !== 'HEAD')
      .map((r) => `${r.method} ${r.url}`)
      .sort()
    expect(open).toEqual([...PUBLIC_OR_GATES].sort())

    const fill = (url: string, eventId: string) =>
      url
        // erasing is for good: a participant of its own
        .replace('/participants/:id/erase', `/participants/${eventId === 'fair' ? 'f-9' : 'e-9'}/erase`)
        .replace(':eventId', eventId)
        .replace(':gateId', 'fair-1')
        .replace(':token', 'aaaa0001')
        .replace('/v1/incidents/:id', `/v1/incidents/${eventId === 'fair' ? incidentOfFair : incidentOfExpo}`)
        .replace('/v1/accounts/:id', '/v1/accounts/00000000-0000-4000-8000-000000000000')
        .replace('/v1/query/participants/:id', `/v1/query/participants/${eventId === 'fair' ? 'f-1' : 'e-1'}`)
        .replace('/v1/query/gates/:id', '/v1/query/gates/fair-1')
        .replace(':id', eventId === 'fair' ? 'f-1' : 'e-1')
    const query = (url: string, eventId: string) =>
      url === '/v1/query/participants'
        ? `?q=ana&event=${eventId}`
        : url === '/v1/incidents' || url === '/v1/audit'
          ? `?event=${eventId}`
          : url.endsWith('/count') || url.endsWith('/counts')
            ? '?since=0'
            : ''
    // bodies that pass the routes' own checks where that is cheap; a 400 still proves the caller was let in
    const body = (method: string, url: string) =>
      method === 'GET' || method === 'DELETE'
        ? undefined
        : url.endsWith('/resolve')
          ? { note: 'handled' }
          : url.endsWith('/replace')
            ? { token: 'cccc0001' }
            : url.endsWith('/retention')
              ? { days: 30 }
              : {}

    for (const [route, access] of Object.entries(EXPECTED)) {
      const [method, url] = route.split(' ') as [string, string]
      if (route === 'DELETE /v1/session') continue // it would end the session the next calls use
      const target = `${fill(url, 'fair')}${query(url, 'fair')}`
      const other = `${fill(url, 'expo')}${query(url, 'expo')}`
      const nobody = await call(method, target, { body: body(method, url) })
      expect(nobody.status, `${route} without credentials`).toBe(401)
      for (const [login, role] of [
        ['olga', 'ops'],
        ['fiona', 'organiser'],
        ['tom', 'technician'],
      ] as const) {
        const allowed = ADMITS[access].includes(role)
        // the event stream never ends by itself: only its refusals are checked here
        if (allowed && url === '/v1/dashboard/stream') continue
        const r = await call(method, target, { as: login, body: body(method, url) })
        if (allowed) expect([401, 403], `${route} as ${role}: ${r.status}`).not.toContain(r.status)
        else expect(r.status, `${route} as ${role}`).toBe(403)
        // another event's data: refused to its organiser, whatever the route
        if (role === 'organiser' && allowed && other !== target) {
          const o = await call(method, other, { as: login, body: body(method, url) })
          expect(o.status, `${route} about another event, as organiser`).toBe(403)
        }
      }
    }
  })

  it("lists only an organiser's events and participants, and asks an organiser of several which", async () => {
    const events = await call('GET', '/v1/query/events', { as: 'fiona' })
    expect((events.body['events'] as Array<{ id: string }>).map((e) => e.id)).toEqual(['fair'])
    const found = await call('GET', '/v1/query/participants?q=ana', { as: 'fiona' })
    expect((found.body['participants'] as Array<{ id: string }>).map((p) => p.id)).toEqual(['f-1'])
    const incidents = await call('GET', '/v1/incidents?open=false', { as: 'fiona' })
    expect((incidents.body['incidents'] as Array<{ gateId: string }>).map((i) => i.gateId)).toEqual([
      'fair-1',
    ])
    const all = await call('GET', '/v1/query/events', { as: 'olga' })
    expect((all.body['events'] as unknown[]).length).toBe(2)
    const everyone = await call('GET', '/v1/query/participants?q=ana', { as: 'olga' })
    expect((everyone.body['participants'] as unknown[]).length).toBe(2)
  })

  it('keeps every action in an append-only audit trail: who, what, when, from where', async () => {
    const revoked = await call('POST', '/v1/events/fair/participants/f-1/revoke', { as: 'fiona' })
    expect(revoked.status).toBe(200)
    const trail = await call('GET', '/v1/audit?event=fair&action=badge', { as: 'fiona' })
    const entries = trail.body['entries'] as Array<Record<string, unknown>>
    const revoke = entries.find((e) => e['action'] === 'badge.revoke')
    expect(revoke).toMatchObject({
      actor: 'fiona',
      role: 'organiser',
      target: 'f-1',
      eventId: 'fair',
      outcome: 'done',
    })
    expect(revoke?.['sourceIp']).toBeTruthy()
    expect(Date.now() - Date.parse(String(revoke?.['at']))).toBeLessThan(60_000)
    // the refusals of the matrix above are there too, and an organiser sees only their event's entries
    const mine = await call('GET', '/v1/audit?limit=1000', { as: 'fiona' })
    expect((mine.body['entries'] as Array<{ eventId: string }>).every((e) => e.eventId === 'fair')).toBe(true)
    const refused = await call('GET', '/v1/audit?action=access.refused&event=expo&limit=1000', { as: 'olga' })
    expect((refused.body['entries'] as Array<{ actor: string }>).some((e) => e.actor === 'fiona')).toBe(true)
    const logins = await call('GET', '/v1/audit?action=session.login&limit=1000', { as: 'olga' })
    const outcomes = (logins.body['entries'] as Array<{ outcome: string }>).map((e) => e.outcome)
    expect(outcomes).toContain('refused')
    expect(outcomes).toContain('done')
    expect(JSON.stringify(logins.body)).not.toContain(PASSWORD)
    // append-only, whoever asks
    await expect(pool.query('UPDATE audit_trail SET actor = $1', ['someone'])).rejects.toThrow(/append-only/)
    await expect(pool.query('DELETE FROM audit_trail')).rejects.toThrow(/append-only/)
  })

  it('a personal token works as a bearer until its account is disabled; a disabled account cannot log in', async () => {
    const issued = await call('POST', '/v1/session/tokens', { as: 'fiona', body: { label: 'door script' } })
    expect(issued.status).toBe(200)
    const token = String(issued.body['token'])
    expect(token).toMatch(/^gct_/)
    expect((await call('GET', '/v1/query/events/fair/attendance', { bearer: token })).status).toBe(200)
    expect((await call('GET', '/v1/query/events/expo/attendance', { bearer: token })).status).toBe(403)
    const id = ((await call('GET', '/v1/session', { as: 'fiona' })).body['account'] as { id: string }).id
    expect((await call('POST', `/v1/accounts/${id}/disable`, { as: 'olga' })).status).toBe(200)
    expect((await call('GET', '/v1/query/events/fair/attendance', { bearer: token })).status).toBe(401)
    expect((await call('GET', '/v1/session', { as: 'fiona' })).status).toBe(401)
    expect((await call('POST', '/v1/session', { body: { login: 'fiona', password: PASSWORD } })).status).toBe(
      401,
    )
  })

  it('a change made with the session cookie must come from the console itself; logging out ends the session', async () => {
    const elsewhere = await call('POST', `/v1/incidents/${incidentOfExpo}/acknowledge`, {
      as: 'olga',
      body: {},
      origin: 'https://evil.example',
    })
    expect(elsewhere.status).toBe(403)
    const same = await call('POST', `/v1/incidents/${incidentOfExpo}/acknowledge`, {
      as: 'olga',
      body: {},
      origin: 'http://localhost:80',
    })
    expect(same.status).toBe(200)
    expect((await call('DELETE', '/v1/session', { as: 'tom' })).status).toBe(200)
    expect((await call('GET', '/v1/session', { as: 'tom' })).status).toBe(401)
  })
})
