import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { v7 as uuidv7 } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CloudClient } from '../../agent/sync/cloud-client.js'
import { loadCloudConfig } from '../../cloud/config.js'
import { createPool } from '../../cloud/db/pool.js'
import { addGate } from '../../cloud/gates/store.js'
import { buildApp } from '../../cloud/http/app.js'
import { importParticipants } from '../../cloud/participants/import.js'
import { maintainPartitions } from '../../cloud/partitions/manager.js'
import type { Checkin } from '../../shared/checkin.js'
import { freePort, silentLog } from '../support/helpers.js'
import { connect, tempDatabase } from '../support/pg-helpers.js'

/**
 * A client of the cloud answering at `endpoints`: every endpoint is a node of the same cloud, in
 * the same state (a client of one node takes the first).
 */
export type MakeCloudClient = (
  endpoints: readonly string[],
  gateKey: string,
  timeoutMs: number,
) => CloudClient

const GATE = 'gate-contract'
const TOKENS = ['0000c0de0001', '0000c0de0002', '0000c0de0003']
/** small, so that a batch the cloud finds too large is quick to make */
const MAX_BODY_BYTES = 64 * 1024

/** A check-in of this gate: a denial of an unknown badge unless `over` says otherwise. */
const checkin = (over: Partial<Checkin> = {}): Checkin => ({
  id: uuidv7(),
  gateId: GATE,
  token: '00aa00bb',
  participantId: null,
  method: 'ble',
  decision: 'deny',
  reason: 'unknown',
  rssi: -60,
  ts: Date.now(),
  monoMs: 1,
  bootId: '0b7a3c5e-3a43-4d5e-8a3e-5c0b2e1d9f10',
  bootSeq: 1,
  rosterVersion: 0,
  ...over,
})

/** Two nodes of a real cloud (buildApp) on one database, with a gate and a small roster. */
async function realCloud() {
  const db = await tempDatabase()
  const sql = await connect(db.url)
  await maintainPartitions(
    sql,
    { interval: 'month', premake: 1, retentionDays: null, dropDetached: true },
    new Date(),
  )
  await sql.end()
  const pool = createPool(loadCloudConfig({ DATABASE_URL: db.url }))
  const key = await addGate(pool, GATE)
  await importParticipants(
    pool,
    TOKENS.map((token, i) => ({ token, participantId: `P-${i}`, status: 'active' as const })),
  )
  const nodes: FastifyInstance[] = []
  for (const name of ['node-a', 'node-b']) {
    const app = await buildApp({
      config: loadCloudConfig({
        DATABASE_URL: db.url,
        NODE_NAME: name,
        MAX_BODY_BYTES: String(MAX_BODY_BYTES),
      }),
      pool,
      log: silentLog,
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    nodes.push(app)
  }
  return {
    key,
    pool,
    urls: nodes.map((n) => `http://127.0.0.1:${(n.server.address() as { port: number }).port}`),
    close: async () => {
      for (const n of nodes) await n.close()
      await pool.end()
      await db.drop()
    },
  }
}

type Answer = (req: IncomingMessage, res: ServerResponse) => void

/** Two small HTTP servers that answer every request as the test scripts them (a cloud in trouble). */
async function scriptedCloud() {
  let answer: Answer = (_req, res) => res.writeHead(500).end()
  const servers: Server[] = []
  for (let i = 0; i < 2; i++) {
    const server = createServer((req, res) => {
      req.resume()
      req.on('end', () => answer(req, res))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    servers.push(server)
  }
  return {
    urls: servers.map((s) => `http://127.0.0.1:${(s.address() as { port: number }).port}`),
    answer: (fn: Answer) => {
      answer = fn
    },
    close: async () => {
      for (const s of servers) {
        s.closeAllConnections()
        await new Promise((r) => s.close(r))
      }
    },
  }
}

/**
 * What the syncer and the roster puller rely on from a CloudClient (agent/sync/cloud-client.ts):
 * every call ends in an outcome, never a throw, and the outcome says what to do next: mark the
 * records the cloud holds, send fewer, keep records as refused, stop on a bad key, or try again
 * later (after Retry-After when the cloud says so). Against a real cloud of two nodes, and against
 * small servers for the answers a healthy cloud does not give.
 */
export function cloudClientContract(name: string, make: MakeCloudClient): void {
  describe(`CloudClient contract: ${name}`, () => {
    let cloud: Awaited<ReturnType<typeof realCloud>>
    let scripted: Awaited<ReturnType<typeof scriptedCloud>>
    beforeAll(async () => {
      cloud = await realCloud()
      scripted = await scriptedCloud()
    })
    afterAll(async () => {
      await scripted?.close()
      await cloud?.close()
    })
    const client = (timeoutMs = 5_000) => make(cloud.urls, cloud.key, timeoutMs)
    const scriptedClient = (timeoutMs = 5_000) => make(scripted.urls, cloud.key, timeoutMs)

    it('uploads a batch: every record stored, each id named, with the cloud time', async () => {
      const records = [checkin(), checkin({ bootSeq: 2 }), checkin({ bootSeq: 3 })]
      const before = Date.now()
      const out = await client().sendBatch(GATE, Date.now(), JSON.stringify(records))
      expect(out).toMatchObject({ ok: true, value: { accepted: 3, duplicates: 0, rejected: [] } })
      if (!out.ok) return
      expect([...out.value.stored].sort()).toEqual(records.map((r) => r.id).sort())
      expect(out.value.serverTime).toBeGreaterThanOrEqual(before - 1_000)
      expect(out.value.serverTime).toBeLessThanOrEqual(Date.now() + 1_000)
    })

    it('takes the records as UTF-8 bytes as well as text, and counts a batch sent again as duplicates', async () => {
      const records = [checkin(), checkin({ bootSeq: 2 })]
      const bytes = new TextEncoder().encode(JSON.stringify(records))
      const first = await client().sendBatch(GATE, Date.now(), bytes)
      expect(first).toMatchObject({ ok: true, value: { accepted: 2, duplicates: 0 } })
      const again = await client().sendBatch(GATE, Date.now(), JSON.stringify(records))
      expect(again).toMatchObject({ ok: true, value: { accepted: 0, duplicates: 2, rejected: [] } })
      if (again.ok) expect([...again.value.stored].sort()).toEqual(records.map((r) => r.id).sort())
    })

    it('answers the records the cloud refuses for good by id, with the reason, as a result', async () => {
      const old = checkin({ ts: Date.now() - 400 * 86_400_000 })
      const out = await client().sendBatch(GATE, Date.now(), JSON.stringify([old]))
      expect(out).toMatchObject({
        ok: true,
        value: { accepted: 0, stored: [], rejected: [{ id: old.id, reason: 'ts_too_old' }] },
      })
    })

    it('says a malformed batch is refused (400), naming the records at fault by index', async () => {
      const records = [checkin(), checkin({ rssi: 99 }), checkin()]
      const out = await client().sendBatch(GATE, Date.now(), JSON.stringify(records))
      expect(out).toMatchObject({ ok: false, kind: 'refused', status: 400 })
      if (out.ok || out.kind !== 'refused') return
      expect(out.problems.map((p) => p.index)).toEqual([1])
      expect(out.problems[0]?.message).toMatch(/rssi/)
    })

    it('says a batch is too large for the cloud (413)', async () => {
      const records = Array.from({ length: 400 }, (_, i) => checkin({ bootSeq: i + 1 }))
      expect(JSON.stringify(records).length).toBeGreaterThan(MAX_BODY_BYTES)
      const out = await client().sendBatch(GATE, Date.now(), JSON.stringify(records))
      expect(out).toMatchObject({ ok: false, kind: 'too-large' })
    })

    it('says the key is refused, for uploads and roster pulls alike, and never shows the key', async () => {
      const wrong = `${cloud.key.slice(0, -4)}0000`
      const c = make(cloud.urls, wrong, 5_000)
      const up = await c.sendBatch(GATE, Date.now(), JSON.stringify([checkin()]))
      expect(up).toMatchObject({ ok: false, kind: 'auth' })
      const pull = await c.fetchRoster(0, null)
      expect(pull).toMatchObject({ ok: false, kind: 'auth' })
      expect(JSON.stringify([up, pull])).not.toContain(wrong)
    })

    it('pulls the roster changes with an ETag, and learns an up-to-date roster from a 304', async () => {
      const first = await client().fetchRoster(0, null)
      expect(first.ok).toBe(true)
      if (!first.ok) return
      const delta = first.value.delta
      expect(delta?.changes.map((c) => c.token).sort()).toEqual([...TOKENS].sort())
      expect(delta?.more).toBe(false)
      expect(first.value.etag).toEqual(expect.any(String))
      const cursor = delta?.cursor ?? 0
      const again = await client().fetchRoster(cursor, first.value.etag)
      expect(again).toEqual({ ok: true, value: { delta: null, etag: first.value.etag } })
      // an older cursor gets the changes whatever the ETag
      const older = await client().fetchRoster(0, first.value.etag)
      expect(older.ok && older.value.delta?.changes.length).toBe(TOKENS.length)
    })

    it('says to try again later when no endpoint can be reached', async () => {
      const closed = [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`]
      const c = make(closed, cloud.key, 2_000)
      expect(await c.sendBatch(GATE, Date.now(), JSON.stringify([checkin()]))).toMatchObject({
        ok: false,
        kind: 'retry',
        message: expect.stringMatching(/unreachable/),
      })
      expect(await c.fetchRoster(0, null)).toMatchObject({ ok: false, kind: 'retry' })
    })

    it('says to try again later after Retry-After (seconds or a date) on 429 and 503', async () => {
      scripted.answer((_req, res) => res.writeHead(429, { 'retry-after': '3' }).end('slow down'))
      expect(await scriptedClient().sendBatch(GATE, Date.now(), '[]')).toMatchObject({
        ok: false,
        kind: 'retry',
        retryAfterMs: 3_000,
      })
      const at = new Date(Date.now() + 10_000).toUTCString()
      scripted.answer((_req, res) => res.writeHead(503, { 'retry-after': at }).end())
      const out = await scriptedClient().fetchRoster(0, null)
      expect(out).toMatchObject({ ok: false, kind: 'retry' })
      const wait = !out.ok && out.kind === 'retry' ? (out.retryAfterMs ?? -1) : -1
      expect(wait).toBeGreaterThan(7_000)
      expect(wait).toBeLessThanOrEqual(10_000)
    })

    it('says to try again later on a 5xx, an answer it cannot read, or no answer in time', async () => {
      scripted.answer((_req, res) => res.writeHead(500).end('boom'))
      expect(await scriptedClient().sendBatch(GATE, Date.now(), '[]')).toMatchObject({
        ok: false,
        kind: 'retry',
        message: expect.stringMatching(/^500/),
      })
      scripted.answer((_req, res) =>
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"x":1}'),
      )
      expect(await scriptedClient().sendBatch(GATE, Date.now(), '[]')).toMatchObject({
        ok: false,
        kind: 'retry',
      })
      expect(await scriptedClient().fetchRoster(0, null)).toMatchObject({ ok: false, kind: 'retry' })
      scripted.answer(() => {}) // never answers
      const t0 = Date.now()
      expect(await scriptedClient(300).fetchRoster(0, null)).toMatchObject({ ok: false, kind: 'retry' })
      expect(Date.now() - t0).toBeLessThan(5_000)
    })

    it('says another 4xx is a refusal of the request, naming no record', async () => {
      scripted.answer((_req, res) => res.writeHead(404).end('no such route'))
      expect(await scriptedClient().sendBatch(GATE, Date.now(), '[]')).toMatchObject({
        ok: false,
        kind: 'refused',
        status: 404,
        problems: [],
      })
    })
  })
}
