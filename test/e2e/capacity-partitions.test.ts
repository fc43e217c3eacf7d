import path from 'node:path'
import Database from 'better-sqlite3'
import type { FastifyInstance } from 'fastify'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GateAgent } from '../../agent/agent.js'
import { PushSource } from '../../agent/ble/push-source.js'
import { systemClock } from '../../agent/clock.js'
import { agentConfigSchema } from '../../agent/config/schema.js'
import { putPolicy } from '../../cloud/access/policies.js'
import { loadCloudConfig } from '../../cloud/config.js'
import { createPool } from '../../cloud/db/pool.js'
import { addGate } from '../../cloud/gates/store.js'
import { buildApp } from '../../cloud/http/app.js'
import { importParticipants } from '../../cloud/participants/import.js'
import type { DecisionEvent } from '../../shared/control.js'
import { walkUp } from '../support/badges.js'
import { silentLog, tempDir } from '../support/helpers.js'
import { tempDatabase } from '../support/pg-helpers.js'
import { eventually } from '../support/process-helpers.js'
import { controlledProxy } from '../support/tcp-proxy.js'

const OPS = 'ops-token-for-the-capacity-test'
const CAPACITY = 12
const PEOPLE = 60
/** how long the crowd comes and goes while the uplinks fail, ms */
const CROWD_MS = 20_000
// gate ids unique to this run: the venue broker is the machine's, shared with other tests
const run = Math.random().toString(36).slice(2, 8)
const ENTRIES = [`in-1-${run}`, `in-2-${run}`, `in-3-${run}`]
const EXIT = `out-${run}`
const TOKENS = Array.from({ length: PEOPLE }, (_, i) => (0xc0de0000 + i).toString(16).padStart(16, '0'))

/** A small seeded PRNG (mulberry32): the same run of partitions and walks for a seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/**
 * Capacity under partitions, with the whole agent (in this process, on a push source the test
 * walks the crowd through), the real cloud over HTTP, Postgres and the venue's Mosquitto: three
 * entry gates and an exit gate of a hall of 12 places, each gate's uplink to the cloud cut and
 * healed at random by its own TCP proxy while 60 people come and go. The test knows who is
 * inside from the gates' own decisions; the hall must never hold more than its capacity, and once
 * the uplinks heal the cloud must hold every decision once and the occupancy the gates made.
 */
describe('capacity holds while the gates are cut off from the cloud at random', () => {
  const tmp = tempDir()
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let app: FastifyInstance
  const proxies: Array<Awaited<ReturnType<typeof controlledProxy>>> = []
  const gates: Array<{ id: string; agent: GateAgent; source: PushSource }> = []

  beforeAll(async () => {
    db = await tempDatabase()
    const config = loadCloudConfig({ DATABASE_URL: db.url, OPS_TOKEN: OPS })
    pool = createPool(config)
    app = await buildApp({ config, pool, log: silentLog })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const addr = app.server.address()
    const cloudPort = typeof addr === 'object' && addr ? addr.port : 0
    await importParticipants(
      pool,
      TOKENS.map((token, i) => ({ token, participantId: `p-${i}`, status: 'active' as const })),
      { eventId: 'expo' },
    )
    await putPolicy(pool, 'expo', {
      timeZone: 'UTC',
      zones: [{ id: 'hall', name: 'Hall', capacity: CAPACITY }],
      lanes: [...ENTRIES.map((gate) => ({ gate, to: 'hall' })), { gate: EXIT, from: 'hall' }],
      rules: [{ id: 'all', name: 'Everyone', zone: 'hall', antiPassback: true }],
    })
    for (const id of [...ENTRIES, EXIT]) {
      const key = await addGate(pool, id, { eventId: 'expo' })
      const proxy = await controlledProxy(cloudPort)
      proxies.push(proxy)
      const source = new PushSource()
      const agent = new GateAgent({
        config: agentConfigSchema.parse({
          gateId: id,
          dataDir: path.join(tmp.dir, id),
          source: { kind: 'sim' },
          proximity: { absenceMs: 300 },
          dedup: { windowMs: 0 },
          cloud: {
            url: `http://127.0.0.1:${proxy.port}`,
            gateKey: key,
            syncIntervalMs: 200,
            rosterPullIntervalMs: 500,
            baseBackoffMs: 50,
            maxBackoffMs: 400,
          },
          mqtt: { url: 'mqtt://127.0.0.1:1883' },
        }),
        clock: systemClock,
        log: silentLog,
        makeSource: () => source,
      })
      await agent.start()
      gates.push({ id, agent, source })
    }
  }, 60_000)
  afterAll(async () => {
    for (const g of gates) await g.agent.stop()
    for (const p of proxies) await p.close()
    await app?.close()
    await pool?.end()
    await db?.drop()
    tmp.cleanup()
  })

  it('never lets more people into the hall than its capacity, and loses or doubles no entry', async () => {
    // every entry gate has its roster, the policy and an allotment before the doors open
    await eventually(
      async () =>
        gates.every(
          (g) =>
            g.agent.status().roster.active === PEOPLE &&
            (g.id === EXIT ||
              (g.agent.status().access?.zones.find((z) => z.zone === 'hall')?.allotment ?? 0) > 0),
        ),
      20_000,
      100,
    )

    // who is inside, as the gates decided it
    const inside = new Set<string>()
    let most = 0
    let admitted = 0
    let full = 0
    for (const g of gates)
      g.agent.pipelineForTests?.on('decision', (d: DecisionEvent) => {
        if (d.participantId === null || d.decision !== 'admit') {
          if (d.reason === 'zone_full') full++
          return
        }
        if (d.access?.zoneIn === 'hall') {
          inside.add(d.participantId)
          admitted++
        }
        if (d.access?.zoneOut === 'hall') inside.delete(d.participantId)
        most = Math.max(most, inside.size)
      })

    const random = prng(0x5eed)
    const walking = new Map<string, number>()
    let cuts = 0
    const until = Date.now() + CROWD_MS
    let nextFault = Date.now()
    while (Date.now() < until) {
      const now = Date.now()
      // the uplinks: every 700 ms one gate's is cut or healed
      if (now >= nextFault) {
        const k = Math.floor(random() * proxies.length)
        const proxy = proxies[k] as (typeof proxies)[number]
        if (random() < 0.55) {
          proxy.cut()
          cuts++
        } else proxy.restore()
        nextFault = now + 700
      }
      // someone outside walks up to an entry, someone inside to the exit (not the same person
      // twice within the proximity's absence time)
      const i = Math.floor(random() * PEOPLE)
      const token = TOKENS[i] as string
      if ((walking.get(token) ?? 0) < now) {
        walking.set(token, now + 600)
        const gate = inside.has(`p-${i}`)
          ? (gates[3] as (typeof gates)[number])
          : (gates[Math.floor(random() * 3)] as (typeof gates)[number])
        walkUp(gate.source, token)
      }
      await new Promise((r) => setTimeout(r, 40))
    }
    for (const p of proxies) p.restore()

    // what the partitions must not break: the hall never over its capacity
    expect(cuts).toBeGreaterThan(10)
    expect(admitted).toBeGreaterThan(CAPACITY)
    expect(full).toBeGreaterThan(0)
    expect(most).toBeLessThanOrEqual(CAPACITY)

    // healed: every decision of every gate reaches the cloud once
    const onGate = (id: string) => {
      const local = new Database(path.join(tmp.dir, id, 'agent.db'), { readonly: true })
      try {
        return local.prepare('SELECT count(*) FROM checkins').pluck().get() as number
      } finally {
        local.close()
      }
    }
    await eventually(
      async () =>
        gates.every((g) => g.agent.status().buffer.pending === 0 && g.agent.status().buffer.inFlight === 0),
      30_000,
      200,
    )
    const stored = await pool.query<{ gate_id: string; n: number }>(
      'SELECT gate_id, count(*)::int AS n FROM attendance_records GROUP BY gate_id ORDER BY gate_id',
    )
    expect(Object.fromEntries(stored.rows.map((r) => [r.gate_id, r.n]))).toEqual(
      Object.fromEntries(gates.map((g) => [g.id, onGate(g.id)])),
    )
    // and the cloud's occupancy is the gates': the people inside, every entry counted once
    const occupancy = await eventually(
      async () => {
        const res = await app.inject({
          method: 'GET',
          url: '/v1/query/events/expo/occupancy',
          headers: { authorization: `Bearer ${OPS}` },
        })
        const hall = (
          res.json() as {
            zones: Array<{ zone: string; occupancy: number; gates: Array<{ entries: number }> }>
          }
        ).zones.find((z) => z.zone === 'hall')
        const entries = hall?.gates.reduce((sum, g) => sum + g.entries, 0)
        return hall && hall.occupancy === inside.size && entries === admitted ? hall : null
      },
      20_000,
      200,
    )
    expect(occupancy.occupancy).toBeLessThanOrEqual(CAPACITY)
  }, 120_000)
})
