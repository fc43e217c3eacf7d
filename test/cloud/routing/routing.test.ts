import net from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import type pg from 'pg'
import { pino } from 'pino'
import { v7 as uuidv7 } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MultiCloudClient } from '../../../agent/sync/cloud-client.js'
import { loadCloudConfig } from '../../../cloud/config.js'
import { createPool } from '../../../cloud/db/pool.js'
import { addGate } from '../../../cloud/gates/store.js'
import { buildApp } from '../../../cloud/http/app.js'
import { buildRouter } from '../../../cloud/routing/router.js'
import {
  Balancer,
  classify,
  formatLoadHeader,
  type NodeLoad,
  parseLoadHeader,
} from '../../../shared/load-balancer.js'
import { freePort, silentLog } from '../../support/helpers.js'
import { tempDatabase } from '../../support/pg-helpers.js'

const load = (node: string, over: Partial<NodeLoad> = {}, ts = 1_000_000): NodeLoad => ({
  node,
  ts,
  inFlight: 0,
  elu: 0.1,
  cpuPercent: 10,
  dbConnections: 0,
  dbWaiting: 0,
  ...over,
})

describe('load-aware balancer', () => {
  it('sends analytics to the least CPU and database work to the fewest connections', () => {
    const now = 1_000_000
    const b = new Balancer({ now: () => now })
    for (const n of ['a', 'b', 'c']) b.add(n, `http://${n}`)
    b.report('a', load('a', { cpuPercent: 80, dbConnections: 1 }))
    b.report('b', load('b', { cpuPercent: 20, dbConnections: 9, dbWaiting: 3 }))
    b.report('c', load('c', { cpuPercent: 50, dbConnections: 4 }))
    expect(b.pick('analytics')?.name).toBe('b')
    expect(b.pick('database')?.name).toBe('a')
    expect(classify('GET', '/v1/query/tokens/abcd')).toBe('analytics')
    expect(classify('POST', '/v1/sync/checkins')).toBe('database')
    expect(classify('GET', '/v1/roster?since=0')).toBe('cache')
    expect(classify('GET', '/healthz')).toBe('general')
  })

  it('counts a stale report as unknown, not idle', () => {
    let now = 1_000_000
    const b = new Balancer({ now: () => now, staleMs: 5_000 })
    b.add('idle-but-stale', 'http://x')
    b.add('busy-fresh', 'http://y')
    b.report('idle-but-stale', load('idle-but-stale', { cpuPercent: 0 }, now - 60_000))
    b.report('busy-fresh', load('busy-fresh', { cpuPercent: 90 }, now))
    expect(b.pick('analytics')?.name).toBe('busy-fresh')
    now += 10_000 // now both are stale: two random choices among all, never an error
    expect(['idle-but-stale', 'busy-fresh']).toContain(b.pick('analytics')?.name)
  })

  it('spreads general traffic by least outstanding of two random choices', () => {
    const b = new Balancer({ now: () => 0 })
    for (const n of ['a', 'b', 'c', 'd']) b.add(n, `http://${n}`)
    const held: Array<(ok: boolean) => void> = []
    for (let i = 0; i < 400; i++) {
      const u = b.pick('general')
      if (u) held.push(b.begin(u))
    }
    const counts = b.upstreams.map((u) => u.outstanding)
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(10)
    for (const d of held) d(true)
    expect(b.upstreams.every((u) => u.outstanding === 0)).toBe(true)
  })

  it('ejects a failing node, and ignores ejection when too many nodes are out (panic)', () => {
    let now = 0
    const b = new Balancer({
      now: () => now,
      ejectAfterFailures: 3,
      ejectMs: 10_000,
      maxEjectedFraction: 0.5,
    })
    const [a, bb] = ['a', 'b', 'c'].map((n) => b.add(n, `http://${n}`))
    for (let i = 0; i < 3; i++) b.begin(a as NonNullable<typeof a>)(false)
    expect(b.isEjected(a as NonNullable<typeof a>)).toBe(true)
    for (let i = 0; i < 50; i++) expect(b.pick('general')?.name).not.toBe('a')
    for (let i = 0; i < 3; i++) b.begin(bb as NonNullable<typeof bb>)(false)
    // two of three out: more than half, so all three are used again rather than overloading c
    const seen = new Set(Array.from({ length: 200 }, () => b.pick('general')?.name))
    expect(seen).toEqual(new Set(['a', 'b', 'c']))
    now += 11_000
    expect(b.isEjected(a as NonNullable<typeof a>)).toBe(false)
  })

  it('in panic, sends to the nodes that still answer the load poll, not to the dead ones', () => {
    const now = 1_000_000
    const b = new Balancer({ now: () => now, ejectAfterFailures: 1, maxEjectedFraction: 0.5 })
    const [a, bb] = ['a', 'b', 'c'].map((n) => b.add(n, `http://${n}`))
    b.begin(a as NonNullable<typeof a>)(false)
    b.begin(bb as NonNullable<typeof bb>)(false)
    b.report('c', load('c', {}, now)) // only c's poll answers
    const seen = new Set(Array.from({ length: 100 }, () => b.pick('general')?.name))
    expect(seen).toEqual(new Set(['c']))
  })

  it('reads the load header gates get, and refuses a malformed one', () => {
    const l = load('node-1', { inFlight: 3, elu: 0.412, cpuPercent: 37.5, dbConnections: 4 })
    expect(parseLoadHeader(formatLoadHeader(l))).toEqual({ ...l, elu: 0.412 })
    expect(parseLoadHeader('inFlight=abc;ts=1')).toBeNull()
    expect(parseLoadHeader('x'.repeat(1000))).toBeNull()
  })
})

describe('gate-cloud router in front of two real nodes', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  const nodes: FastifyInstance[] = []
  let router: FastifyInstance
  beforeAll(async () => {
    db = await tempDatabase()
    pool = createPool(loadCloudConfig({ DATABASE_URL: db.url }))
    for (const name of ['node-a', 'node-b']) {
      const app = await buildApp({
        config: loadCloudConfig({ DATABASE_URL: db.url, NODE_NAME: name }),
        pool,
        log: silentLog,
      })
      await app.listen({ host: '127.0.0.1', port: 0 })
      nodes.push(app)
    }
    const backends = nodes.map((n) => {
      const a = n.server.address() as { port: number }
      return `http://127.0.0.1:${a.port}`
    })
    ;({ app: router } = await buildRouter({ backends, log: silentLog, pollMs: 200 }))
    await router.listen({ host: '127.0.0.1', port: 0 })
  })
  afterAll(async () => {
    await router.close()
    for (const n of nodes) await n.close().catch(() => {})
    await pool.end()
    await db.drop()
  })

  it('spreads requests over both nodes, then keeps answering when one dies', async () => {
    const base = `http://127.0.0.1:${(router.server.address() as { port: number }).port}`
    const seen = new Set<string>()
    for (let i = 0; i < 40; i++) {
      const res = await fetch(`${base}/v1/load`)
      expect(res.status).toBe(200)
      seen.add(((await res.json()) as NodeLoad).node)
    }
    expect(seen).toEqual(new Set(['node-a', 'node-b']))
    await nodes[1]?.close()
    let failed = 0
    const after = new Set<string>()
    for (let i = 0; i < 40; i++) {
      const res = await fetch(`${base}/v1/load`)
      if (res.status !== 200) failed++
      else after.add(((await res.json()) as NodeLoad).node)
    }
    // at most the failures that eject the dead node (3); the rest reach the live one
    expect(failed).toBeLessThanOrEqual(3)
    expect(after).toEqual(new Set(['node-a']))
    const status = (await (await fetch(`${base}/router/status`)).json()) as {
      upstreams: Array<{ ejected: boolean }>
    }
    expect(status.upstreams.filter((u) => u.ejected)).toHaveLength(1)
  })

  it("a gate with several cloud URLs fails over from a dead one and learns each node's load", async () => {
    const key = await addGate(pool, 'gate-multi')
    const live = nodes
      .slice(0, 1)
      .map((n) => `http://127.0.0.1:${(n.server.address() as { port: number }).port}`)
    const dead = `http://127.0.0.1:${await freePort()}`
    const client = new MultiCloudClient([dead, ...live], key, 2_000)
    const boot = uuidv7()
    for (let i = 0; i < 10; i++) {
      const rec = {
        id: uuidv7(),
        gateId: 'gate-multi',
        token: '00aa00bb',
        participantId: null,
        method: 'ble',
        decision: 'deny',
        reason: 'unknown',
        rssi: -60,
        ts: Date.now(),
        monoMs: i,
        bootId: boot,
        bootSeq: i + 1,
        rosterVersion: 0,
      }
      const out = await client.sendBatch('gate-multi', Date.now(), JSON.stringify([rec]))
      expect(out.ok).toBe(true)
    }
    const byUrl = new Map(client.endpoints.map((u) => [u.url, u]))
    expect(byUrl.get(live[0] as string)?.load?.node).toBe('node-a')
    expect(byUrl.get(dead)?.load).toBeNull()
    const n = await pool.query(
      `SELECT count(*)::int AS n FROM attendance_records WHERE gate_id = 'gate-multi'`,
    )
    expect(n.rows[0].n).toBe(10)
  })
})

describe('the router keeps secrets out of its log', () => {
  it('redacts the query string of every request line', async () => {
    const node = Fastify()
    node.get('/v1/load', async () => load('n1', {}, Date.now()))
    node.get('/v1/roster', async () => ({ changes: [] }))
    await node.listen({ host: '127.0.0.1', port: 0 })
    const lines: string[] = []
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) })
    const { app } = await buildRouter({
      backends: [`http://127.0.0.1:${(node.server.address() as { port: number }).port}`],
      log,
      pollMs: 200,
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    try {
      const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
      const secret = 'gk_abcdefghijkl_0123456789012345678901234567890123456789abc'
      expect((await fetch(`${base}/v1/roster?since=0&key=${secret}`)).status).toBe(200)
      const all = lines.join('\n')
      expect(all).toContain('/v1/roster?since=[redacted]&key=[redacted]')
      expect(all).not.toContain(secret)
    } finally {
      await app.close()
      await node.close()
    }
  })
})

describe('the router refuses a request target that is not a path', () => {
  it('answers an absolute-form target (or *) with 400 before choosing a node', async () => {
    let proxied = 0
    const node = Fastify()
    node.get('/v1/load', async () => load('n1', {}, Date.now()))
    node.addHook('onRequest', async (req) => {
      if (req.url !== '/v1/load') proxied++
    })
    await node.listen({ host: '127.0.0.1', port: 0 })
    const { app } = await buildRouter({
      backends: [`http://127.0.0.1:${(node.server.address() as { port: number }).port}`],
      log: silentLog,
      pollMs: 200,
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    try {
      const port = (app.server.address() as { port: number }).port
      for (const target of ['http://127.0.0.1:1/v1/roster', '*']) {
        const answer = await new Promise<string>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1')
          let out = ''
          s.on('data', (d) => {
            out += d.toString()
          })
          s.on('error', reject)
          s.on('close', () => resolve(out))
          s.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
        })
        expect(answer.split('\r\n')[0], target).toBe('HTTP/1.1 400 Bad Request')
        expect(answer).toContain('"code":"E_INPUT"')
      }
      expect(proxied).toBe(0)
    } finally {
      await app.close()
      await node.close()
    }
  })
})

describe('the router in front of nodes that misbehave', () => {
  const backends: FastifyInstance[] = []
  let router: FastifyInstance
  let base = ''
  const hits = { shed: 0 }
  beforeAll(async () => {
    const node = Fastify({ forceCloseConnections: true })
    node.get('/v1/load', async () => load('n1', {}, Date.now()))
    node.get('/v1/roster', async (_req, reply) => {
      hits.shed++
      return reply
        .status(503)
        .header('Retry-After', '5')
        .send({ error: { code: 'E_OVERLOADED' } })
    })
    node.get('/v1/slow', () => new Promise(() => {})) // accepts and never answers
    await node.listen({ host: '127.0.0.1', port: 0 })
    backends.push(node)
    const port = (node.server.address() as { port: number }).port
    ;({ app: router } = await buildRouter({
      backends: [`http://127.0.0.1:${port}`],
      log: silentLog,
      pollMs: 200,
    }))
    await router.listen({ host: '127.0.0.1', port: 0 })
    base = `http://127.0.0.1:${(router.server.address() as { port: number }).port}`
  })
  afterAll(async () => {
    await router.close()
    for (const b of backends) await b.close()
  })

  it("passes a node's 503 back at once instead of retrying it on the same node", async () => {
    const res = await fetch(`${base}/v1/roster?since=0`)
    expect(res.status).toBe(503)
    expect(hits.shed).toBe(1)
  })

  it('releases the count of a request whose client went away', async () => {
    await fetch(`${base}/v1/slow`, { signal: AbortSignal.timeout(300) }).catch(() => undefined)
    const outstanding = async () =>
      ((await (await fetch(`${base}/router/status`)).json()) as { upstreams: Array<{ outstanding: number }> })
        .upstreams[0]?.outstanding
    let n = await outstanding()
    for (let i = 0; i < 20 && n !== 0; i++) {
      await new Promise((r) => setTimeout(r, 50))
      n = await outstanding()
    }
    expect(n).toBe(0)
  })
})
