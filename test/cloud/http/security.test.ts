import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import { gzipSync } from 'node:zlib'
import Fastify, { type FastifyInstance } from 'fastify'
import type pg from 'pg'
import { pino } from 'pino'
import { v7 as uuidv7 } from 'uuid'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { loadCloudConfig } from '../../../cloud/config.js'
import { createPool } from '../../../cloud/db/pool.js'
import { addGate, revokeGate } from '../../../cloud/gates/store.js'
import { buildApp } from '../../../cloud/http/app.js'
import { errorHandler } from '../../../cloud/http/errors.js'
import { AuthFailureLimiter } from '../../../cloud/http/plugins/app/auth-failures.js'
import { importParticipants } from '../../../cloud/participants/import.js'
import { maintainPartitions } from '../../../cloud/partitions/manager.js'
import type { Checkin } from '../../../shared/checkin.js'
import { writeResults } from '../../chaos/harness.js'
import { silentLog } from '../../support/helpers.js'
import { connect, tempDatabase } from '../../support/pg-helpers.js'
import { eventually } from '../../support/process-helpers.js'

const OPS = 'ops-token-for-security-tests-0123'

/** Strings an attacker would try in every parameter: SQL injection, traversal, encodings, sizes. */
const HOSTILE = [
  "' OR '1'='1",
  "'; DROP TABLE attendance_records; --",
  '1; DELETE FROM participants',
  "x') UNION SELECT secret_sha256::text FROM gate_keys --",
  '$1',
  '\\x00',
  '%00',
  '../../../etc/passwd',
  '<script>alert(1)</script>',
  '{"$ne": null}',
  '__proto__',
  'é'.repeat(300),
  '9'.repeat(400),
  '-1',
  '1e309',
  'NaN',
]

/**
 * The security promises of the cloud, on the real Postgres: a gate's key reads its own event's
 * roster only and writes only its own records; a revoked key stops working at once (the key
 * cache is dropped by NOTIFY, not left to expire); a gate over its rate gets 429 while the others
 * go on; no parameter of any endpoint reaches SQL as text.
 */
describe('security of the cloud API', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let app: FastifyInstance
  let sql: pg.Client
  const keys: Record<string, string> = {}
  const now = Date.now()

  const rec = (gateId: string, over: Partial<Checkin> = {}): Checkin => ({
    id: uuidv7(),
    gateId,
    token: '00aa0001',
    participantId: 'A-1',
    method: 'ble',
    decision: 'admit',
    reason: null,
    rssi: -60,
    ts: now - 1_000,
    monoMs: 1,
    bootId: uuidv7(),
    bootSeq: 1,
    rosterVersion: 1,
    ...over,
  })
  const sync = (key: string, body: unknown) =>
    app.inject({
      method: 'POST',
      url: '/v1/sync/checkins',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    })
  const roster = (key: string) =>
    app.inject({ method: 'GET', url: '/v1/roster?since=0', headers: { authorization: `Bearer ${key}` } })
  const counts = async () => {
    const r = await sql.query(
      `SELECT (SELECT count(*) FROM attendance_records) AS a, (SELECT count(*) FROM participants) AS p,
              (SELECT count(*) FROM gate_keys) AS k, (SELECT count(*) FROM incidents) AS i`,
    )
    return r.rows[0] as Record<string, string>
  }

  beforeAll(async () => {
    db = await tempDatabase()
    sql = await connect(db.url)
    await maintainPartitions(
      sql,
      { interval: 'month', premake: 1, retentionDays: null, dropDetached: true },
      new Date(),
    )
    // the default key cache (30 s) and a small per-gate rate for the test
    const config = loadCloudConfig({ DATABASE_URL: db.url, OPS_TOKEN: OPS, GATE_RATE_LIMIT_PER_MIN: '20' })
    pool = createPool(config)
    app = await buildApp({ config, pool, log: silentLog })
    keys['a1'] = await addGate(pool, 'a1', { eventId: 'fest-a' })
    keys['a2'] = await addGate(pool, 'a2', { eventId: 'fest-a' })
    keys['b1'] = await addGate(pool, 'b1', { eventId: 'fest-b' })
    keys['rl'] = await addGate(pool, 'rl', { eventId: 'fest-b' })
    await importParticipants(
      pool,
      [
        { token: '00aa0001', participantId: 'A-1', status: 'active', name: 'Ann', email: 'ann@a.example' },
        { token: '00aa0002', participantId: 'A-2', status: 'revoked', name: 'Al', email: 'al@a.example' },
      ],
      { eventId: 'fest-a' },
    )
    await importParticipants(
      pool,
      [{ token: '00bb0001', participantId: 'B-1', status: 'active', name: 'Bea', email: 'bea@b.example' }],
      { eventId: 'fest-b' },
    )
  })
  const rows: Parameters<typeof writeResults>[1] = []
  afterAll(async () => {
    writeResults('security', rows)
    await app?.close()
    await pool?.end()
    await sql?.end()
    await db?.drop()
  })

  it("a gate's key reads its own event's roster, never another event's", async () => {
    const a = roster(keys['a1'] as string)
    const b = roster(keys['b1'] as string)
    const ids = async (r: ReturnType<typeof roster>) =>
      ((await r).json() as { changes: Array<{ participantId: string }> }).changes
        .map((c) => c.participantId)
        .sort()
    expect(await ids(a)).toEqual(['A-1', 'A-2'])
    expect(await ids(b)).toEqual(['B-1'])
  })

  it("a gate's key cannot write another gate's records, even of its own event", async () => {
    const before = await counts()
    const r = await sync(keys['a1'] as string, { gateId: 'a1', sentAt: now, records: [rec('a2')] })
    expect(r.statusCode).toBe(403)
    const r2 = await sync(keys['a1'] as string, { gateId: 'a2', sentAt: now, records: [rec('a2')] })
    expect(r2.statusCode).toBe(403)
    expect(await counts()).toEqual(before)
    expect(
      (await sync(keys['a1'] as string, { gateId: 'a1', sentAt: now, records: [rec('a1')] })).statusCode,
    ).toBe(200)
    rows.push({
      what: "a gate's key against another gate's records and another event's roster",
      tried: 4,
      outcome: "403, nothing stored; the other event's participants not visible",
    })
  })

  it('a revoked key stops working at once, although checked keys are cached for 30 s', async () => {
    const key = await addGate(pool, 'short-lived')
    expect((await roster(key)).statusCode).toBe(200) // checked, now cached
    await revokeGate(pool, 'short-lived')
    // the NOTIFY reaches this node within a moment of the commit
    const t0 = Date.now()
    await eventually(async () => (await roster(key)).statusCode === 401, 2_000, 20)
    expect(Date.now() - t0).toBeLessThan(2_000)
    expect(
      (await sync(key, { gateId: 'short-lived', sentAt: now, records: [rec('short-lived')] })).statusCode,
    ).toBe(401)
    rows.push({
      what: 'a revoked key (with the 30 s key cache)',
      tried: 1,
      outcome: 'refused at once (NOTIFY drops the cache)',
    })
  })

  it('limits each gate on its own: over its rate a gate gets 429 with Retry-After, the others go on', async () => {
    let limited: Awaited<ReturnType<typeof roster>> | null = null
    for (let i = 0; i < 25 && !limited; i++) {
      const r = await roster(keys['rl'] as string)
      if (r.statusCode === 429) limited = r
      else expect(r.statusCode).toBe(200)
    }
    expect(limited?.statusCode).toBe(429)
    expect(Number(limited?.headers['retry-after'])).toBeGreaterThan(0)
    expect(limited?.json().error.code).toBe('E_RATE_LIMITED')
    expect((await roster(keys['b1'] as string)).statusCode).toBe(200)
    // unauthenticated requests do not spend a gate's budget
    const bad = await app.inject({
      method: 'GET',
      url: '/v1/roster',
      headers: { authorization: 'Bearer gk_x_y' },
    })
    expect(bad.statusCode).toBe(401)
    rows.push({
      what: 'a gate over its rate limit',
      tried: 1,
      outcome: '429 with Retry-After; other gates unaffected',
    })
  })

  it('takes injection strings in every parameter without running them: clear 4xx or an empty answer', async () => {
    const before = await counts()
    const ops = (url: string) =>
      app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${OPS}` } })
    for (const h of HOSTILE) {
      const e = encodeURIComponent(h)
      const answers = await Promise.all([
        ops(`/v1/query/participants/${e}/checkins?limit=10`),
        ops(`/v1/query/participants/${e}/checkins?before=${e}`),
        ops(`/v1/query/gates/${e}/count?since=${e}`),
        ops(`/v1/query/gates/counts?since=${e}`),
        ops(`/v1/query/tokens/${e}`),
        ops(`/v1/query/participants?q=${e}`),
        ops(`/v1/incidents?kind=${e}&open=${e}`),
        ops(`/v1/fleet/${e}`),
        ops(`/v1/fleet/${e}/history?minutes=${e}`),
        app.inject({
          method: 'GET',
          url: `/v1/roster?since=${e}&limit=${e}`,
          headers: { authorization: `Bearer ${keys['a1']}` },
        }),
        app.inject({ method: 'GET', url: '/v1/roster', headers: { authorization: `Bearer ${h}` } }),
        sync(keys['a2'] as string, {
          gateId: 'a2',
          sentAt: now,
          records: [rec('a2', { token: h, participantId: h })],
        }),
        sync(keys['a2'] as string, { gateId: h, sentAt: now, records: [rec(h)] }),
      ])
      for (const r of answers) {
        // never a server error, never a SQL error message leaked
        expect(r.statusCode, `${r.raw.req.url} ${h}`).toBeLessThan(500)
        expect(r.body).not.toMatch(/syntax error|SQLSTATE|pg_|relation "/i)
      }
    }
    const after = await counts()
    // nothing dropped or deleted; the only rows written are the records a2 sent for itself
    expect(Number(after['p'])).toBe(Number(before['p']))
    expect(Number(after['k'])).toBe(Number(before['k']))
    expect(Number(after['a'])).toBeGreaterThanOrEqual(Number(before['a']))
    const foreign = await sql.query(
      "SELECT count(*) AS n FROM attendance_records WHERE gate_id <> ALL ('{a1,a2}')",
    )
    expect(Number(foreign.rows[0].n)).toBe(0)
    rows.push({
      what: 'injection and hostile strings in every parameter of every endpoint',
      tried: HOSTILE.length * 13,
      outcome: 'no 5xx, no SQL error leaked, nothing written but own records',
    })
  })

  it("a gate cannot check in another event's participants: refused by name, reported to ops, its own records go in when resent", async () => {
    const metric = async (name: string, reason: string) => {
      const text = (await app.inject({ url: '/metrics' })).body
      return Number(new RegExp(`^${name}\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
    }
    const storedOf = async (ids: string[]) =>
      (await sql.query('SELECT count(*)::int AS n FROM attendance_records WHERE id = ANY($1)', [ids])).rows[0]
        .n
    const refused0 = await metric('ingest_records_refused_total', 'wrong_event')
    const flagged0 = await metric('ingest_records_flagged_total', 'unknown_participant')
    // B-1 admitted at fest-b's gate
    const atB = rec('b1', { participantId: 'B-1', token: '00bb0001', ts: now - 120_000 })
    expect((await sync(keys['b1'] as string, { gateId: 'b1', sentAt: now, records: [atB] })).statusCode).toBe(
      200,
    )

    const own = rec('a1', { ts: now - 70_000 })
    // fest-b's participant admitted at fest-a's gate a minute later: a double entry at fest-b, had it gone in
    const foreign = rec('a1', { participantId: 'B-1', token: '00bb0001', ts: now - 60_000 })
    // fest-b's badge at fest-a's door as an honest gate records it: denied, unknown, no participant
    const strangerDenied = rec('a1', {
      decision: 'deny',
      reason: 'unknown',
      participantId: null,
      token: '00bb0001',
      ts: now - 50_000,
    })
    // one of fest-a's participants with fest-b's badge
    const foreignBadge = rec('a1', { participantId: 'A-1', token: '00bb0001', ts: now - 40_000 })
    const res = await sync(keys['a1'] as string, {
      gateId: 'a1',
      sentAt: now,
      records: [own, foreign, strangerDenied, foreignBadge],
    })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.details.map((d: { index: number; path: string }) => [d.index, d.path])).toEqual([
      [1, 'participantId'],
      [3, 'token'],
    ])
    expect(res.body).not.toContain('fest-b') // nothing of the other event is told to the gate
    expect(await storedOf([own.id, foreign.id, strangerDenied.id, foreignBadge.id])).toBe(0)
    // the gate keeps the two refused records and sends the rest again (agent/sync/syncer.ts)
    const rest = await sync(keys['a1'] as string, {
      gateId: 'a1',
      sentAt: now,
      records: [own, strangerDenied],
    })
    expect(rest.json()).toMatchObject({ accepted: 2, duplicates: 0 })
    // nothing counted at fest-b: no double entry against its gate
    const doubles = await sql.query(
      `SELECT count(*)::int AS n FROM incidents WHERE kind = 'double_entry' AND 'a1' IN (gate_id, other_gate_id)`,
    )
    expect(doubles.rows[0].n).toBe(0)
    // ops see it: one open incident for the gate, counted, naming the other event
    const wrong = await app.inject({
      url: '/v1/incidents?kind=wrong_event',
      headers: { authorization: `Bearer ${OPS}` },
    })
    expect(wrong.json().incidents).toEqual([
      expect.objectContaining({
        gateId: 'a1',
        participantId: 'B-1',
        recordId: foreign.id,
        detail: expect.objectContaining({
          records: 2,
          batches: 1,
          last: expect.objectContaining({
            recordId: foreignBadge.id,
            tokenEvent: 'fest-b',
            gateEvent: 'fest-a',
          }),
        }),
      }),
    ])
    expect((await metric('ingest_records_refused_total', 'wrong_event')) - refused0).toBe(2)

    // a participant moved to fest-b after a1 pulled its roster: a1 may have admitted them before it heard
    const a3 = { token: '00aa0003', participantId: 'A-3', status: 'active' as const }
    await importParticipants(pool, [a3], { eventId: 'fest-a' })
    await importParticipants(pool, [a3], { eventId: 'fest-b' })
    const moved = rec('a1', { participantId: 'A-3', token: '00aa0003' })
    expect(
      (await sync(keys['a1'] as string, { gateId: 'a1', sentAt: now, records: [moved] })).json(),
    ).toMatchObject({
      accepted: 1,
    })
    // a participant the cloud never had (a roster given to the gate by other means): stored, flagged
    const unknown = rec('a1', { participantId: 'Z-9', token: '00ff0009' })
    expect(
      (await sync(keys['a1'] as string, { gateId: 'a1', sentAt: now, records: [unknown] })).json(),
    ).toMatchObject({ accepted: 1 })
    const flagged = await sql.query(
      `SELECT detail FROM incidents WHERE kind = 'unknown_participant' AND gate_id = 'a1' AND resolved_at IS NULL`,
    )
    expect(flagged.rows).toEqual([{ detail: expect.objectContaining({ records: 1 }) }])
    expect((await metric('ingest_records_flagged_total', 'unknown_participant')) - flagged0).toBe(1)
    rows.push({
      what: "a gate's records for another event's participants or badges",
      tried: 2,
      outcome: '400 naming them, nothing of the batch stored, one wrong_event incident, counted',
    })
  })

  it("answers Postgres' data errors as 400 with the code only, never Postgres' text or a 500", async () => {
    const probe = Fastify({ logger: false })
    probe.setErrorHandler(errorHandler)
    probe.get('/cast', async () => (await pool.query('SELECT $1::int AS n', ['not a number'])).rows)
    try {
      const res = await probe.inject({ url: '/cast' })
      expect(res.statusCode).toBe(400)
      expect(res.json()).toEqual({
        error: {
          code: 'E_INPUT',
          message: 'a value of the request cannot be stored (Postgres data error 22P02)',
        },
      })
    } finally {
      await probe.close()
    }
  })

  it('keeps a key or a token sent in the query string out of the log', async () => {
    const lines: string[] = []
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) })
    const config = loadCloudConfig({ DATABASE_URL: db.url, OPS_TOKEN: OPS })
    const logged = await buildApp({ config, pool, log })
    const key = keys['a1'] as string
    try {
      const answers = await Promise.all([
        logged.inject({ url: `/v1/roster?since=0&key=${key}`, headers: { authorization: `Bearer ${key}` } }),
        logged.inject({ url: `/v1/query/stats?token=${OPS}`, headers: { authorization: `Bearer ${OPS}` } }),
        logged.inject({ url: `/v1/query/stats?${OPS}` }),
        logged.inject({ url: `/no/such/route?token=${OPS}&key=${key}` }),
      ])
      expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 401, 404])
      const all = lines.join('\n')
      expect(all).toContain('/v1/roster?since=[redacted]&key=[redacted]') // the path and the names stay
      expect(all).toContain('/no/such/route?token=[redacted]')
      expect(all).not.toContain(OPS)
      expect(all).not.toContain(key.slice(16))
    } finally {
      await logged.close()
    }
  })

  it("refuses a gate named like the cloud's broker account", async () => {
    await expect(addGate(pool, 'gate-cloud')).rejects.toThrow(/reserved for the cloud/)
  })
})

/** A raw HTTP/1.1 exchange: what the server answered and whether it closed the connection, by `ms`. */
async function rawExchange(
  port: number,
  head: string,
  opts: { body?: (s: net.Socket) => void; ms: number },
): Promise<{ answer: string; closed: boolean }> {
  const s = net.connect(port, '127.0.0.1')
  await once(s, 'connect')
  let answer = ''
  let closed = false
  s.on('data', (d) => {
    answer += d.toString()
  })
  s.on('error', () => {})
  s.on('close', () => {
    closed = true
  })
  s.write(head)
  opts.body?.(s)
  const until = Date.now() + opts.ms
  while (!closed && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
  s.destroy()
  return { answer, closed }
}

const madeUpKey = () =>
  `gk_${randomBytes(9).toString('hex').slice(0, 12)}_${randomBytes(32).toString('base64url')}`

/**
 * What a caller without a valid key can make the node do: nothing past the headers. The key is
 * checked before the body is read, a made-up key costs no query, failures are limited per
 * address, and a request must arrive within HTTP_REQUEST_TIMEOUT_MS.
 */
describe('callers without a valid key, and slow requests', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let app: FastifyInstance
  let port = 0
  let key = ''
  beforeAll(async () => {
    db = await tempDatabase()
    const config = loadCloudConfig({
      DATABASE_URL: db.url,
      OPS_TOKEN: OPS,
      AUTH_FAILURES_PER_MIN: '5',
      HTTP_REQUEST_TIMEOUT_MS: '1000',
    })
    pool = createPool(config)
    key = await addGate(pool, 'g1') // before the app listens for key changes: no NOTIFY to race
    app = await buildApp({ config, pool, log: silentLog })
    await app.listen({ host: '127.0.0.1', port: 0 })
    port = (app.server.address() as { port: number }).port
  })
  afterAll(async () => {
    await app?.close()
    await pool?.end()
    await db?.drop()
  })

  it('refuses a request without a valid key before reading its body, and closes the connection', async () => {
    // a gzip bomb announced, one byte of it sent: the answer must not wait for the rest
    const bomb = gzipSync(Buffer.alloc(8 * 1024 * 1024, ' '))
    for (const [url, auth] of [
      ['/v1/sync/checkins', ''],
      ['/v1/sync/checkins', `Authorization: Bearer ${madeUpKey()}\r\n`],
      ['/v1/fleet/g1/commands', 'Authorization: Bearer not-the-ops-token\r\n'],
    ] as const) {
      const t0 = Date.now()
      const r = await rawExchange(
        port,
        `POST ${url} HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\n` +
          `Content-Encoding: gzip\r\nContent-Length: ${bomb.length}\r\n\r\n`,
        { body: (s) => s.write(bomb.subarray(0, 1)), ms: 2_000 },
      )
      expect(r.answer.split('\r\n')[0], url).toBe('HTTP/1.1 401 Unauthorized')
      expect(r.closed, `${url}: connection closed`).toBe(true)
      expect(Date.now() - t0).toBeLessThan(2_000)
    }
  })

  it("a made-up key costs no database query and does not push real gates' keys out of the cache", async () => {
    const ok = () => app.inject({ url: '/v1/roster', headers: { authorization: `Bearer ${key}` } })
    expect((await ok()).statusCode).toBe(200) // checked, now cached
    const query = vi.spyOn(pool, 'query')
    try {
      for (let i = 0; i < 200; i++) {
        const r = await app.inject({
          url: '/v1/roster',
          headers: { authorization: `Bearer ${madeUpKey()}` },
          remoteAddress: `198.51.100.${i % 250}`,
        })
        expect(r.statusCode).toBe(401)
      }
      // the list of key ids may be read again a few times (a key made since?), never once a key
      expect(query.mock.calls.length).toBeLessThanOrEqual(6)
      query.mockClear()
      expect((await ok()).statusCode).toBe(200)
      expect(query.mock.calls.length).toBe(0) // still cached
      // a key made now, while made-up ones are tried, is known within a moment: the list is read
      // again on the NOTIFY of the change, or within a second where none comes (PGlite)
      const fresh = await addGate(pool, 'g2')
      const t0 = Date.now()
      await eventually(
        async () =>
          (await app.inject({ url: '/v1/roster', headers: { authorization: `Bearer ${fresh}` } }))
            .statusCode === 200,
        2_000,
        50,
      )
      expect(Date.now() - t0).toBeLessThan(1_500)
    } finally {
      query.mockRestore()
    }
  })

  it('limits failed authentications per address: 429 with Retry-After, valid keys and other addresses go on', async () => {
    const from = (remoteAddress: string, authorization: string, url = '/v1/roster') =>
      app.inject({ url, headers: { authorization }, remoteAddress })
    for (let i = 0; i < 5; i++)
      expect((await from('203.0.113.7', `Bearer ${madeUpKey()}`)).statusCode).toBe(401)
    const limited = await from('203.0.113.7', `Bearer ${madeUpKey()}`)
    expect(limited.statusCode).toBe(429)
    expect(limited.json().error.code).toBe('E_RATE_LIMITED')
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0)
    expect((await from('203.0.113.7', 'Bearer wrong', '/v1/query/stats')).statusCode).toBe(429)
    // the gates behind that address, and ops with the right token, still get in
    expect((await from('203.0.113.7', `Bearer ${key}`)).statusCode).toBe(200)
    expect((await from('203.0.113.7', `Bearer ${OPS}`, '/v1/query/stats')).statusCode).toBe(200)
    expect((await from('203.0.113.8', `Bearer ${madeUpKey()}`)).statusCode).toBe(401)
    // an IPv6 host has a /64 to choose from: counted as one
    for (let i = 0; i < 5; i++)
      expect((await from(`2001:db8:1:2::${i + 1}`, 'Bearer x')).statusCode).toBe(401)
    expect((await from('2001:db8:1:2:ffff::9', 'Bearer x')).statusCode).toBe(429)
  })

  it('remembers failures of at most 10,000 addresses', () => {
    const limiter = new AuthFailureLimiter(5)
    for (let i = 0; i < 30_000; i++) limiter.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)
    expect(limiter.size).toBe(10_000)
  })

  it('cuts a request whose body does not arrive within HTTP_REQUEST_TIMEOUT_MS (408)', async () => {
    // a valid key trickling its batch a byte every 200 ms: 1 s allowed, cut within ~1.25 s
    let timer: NodeJS.Timeout | undefined
    const t0 = Date.now()
    const r = await rawExchange(
      port,
      `POST /v1/sync/checkins HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n',
      {
        body: (s) => {
          timer = setInterval(() => s.write('{'), 200)
          s.on('close', () => clearInterval(timer))
        },
        ms: 4_000,
      },
    )
    clearInterval(timer)
    expect(r.answer.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout')
    expect(r.closed).toBe(true)
    expect(Date.now() - t0).toBeLessThan(3_000)
  })
})
