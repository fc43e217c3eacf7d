import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import type { FastifyInstance } from 'fastify'
import mqtt from 'mqtt'
import type pg from 'pg'
import { Registry } from 'prom-client'
import { v7 as uuidv7 } from 'uuid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Advert } from '../../agent/ble/source.js'
import { loadAgentConfig } from '../../agent/config/load.js'
import { agentConfigSchema } from '../../agent/config/schema.js'
import { advertFromStructures, parseAdStructures } from '../../agent/decode/ad-structures.js'
import { createTokenDecoder } from '../../agent/decode/token-decoder.js'
import { loadCloudConfig } from '../../cloud/config.js'
import { createPool } from '../../cloud/db/pool.js'
import { FleetMonitor } from '../../cloud/fleet/monitor.js'
import { addGate } from '../../cloud/gates/store.js'
import { buildApp } from '../../cloud/http/app.js'
import { maintainPartitions } from '../../cloud/partitions/manager.js'
import { isGateError } from '../../shared/errors.js'
import { silentLog, tempDir } from '../support/helpers.js'
import { connect, tempDatabase } from '../support/pg-helpers.js'
import { AGENT_BIN, cleanEnv, GATECTL_BIN } from '../support/process-helpers.js'
import { writeResults } from './harness.js'

/** A small deterministic PRNG (mulberry32): a failure is reproducible from its seed. */
function prng(seed: number) {
  let s = seed
  const next = () => {
    s = (s + 0x6d2b79f5) | 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  return { next, int, bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => int(256))) }
}

const results: Parameters<typeof writeResults>[1] = []
afterAll(() => writeResults('fuzz', results))

// real adverts (AD structures as a radio delivers them) to mutate
const REAL = [
  '0201061aff4c000215e2c56db5dffb48d2b060d0f5a71096e000010002c5', // iBeacon
  '0201060303aafe1516aafe00e8edd1ebeac04e5defa017000000000001', // Eddystone-UID
  '02010611ffffffca110123456789abcdef00', // manufacturer data
  '0201020a094d79205068656f6e65', // a phone's name
].map((h) => Buffer.from(h, 'hex'))

describe('fuzzing the decoders', () => {
  it('a million random and mutated adverts: no crash, every input counted', () => {
    const d = createTokenDecoder(agentConfigSchema.parse({}).decoders)
    const r = prng(20261126)
    const N = 1_000_000
    for (let i = 0; i < N; i++) {
      let raw: Buffer
      const pick = r.next()
      if (pick < 0.3) raw = r.bytes(r.int(40))
      else {
        raw = Buffer.from(REAL[r.int(REAL.length)] as Buffer)
        const flips = 1 + r.int(4)
        for (let f = 0; f < flips; f++) {
          const k = r.int(raw.length)
          const how = r.int(4)
          if (how === 0)
            raw[k] = r.int(256) // a random byte (lengths lie, types change)
          else if (how === 1)
            raw = raw.subarray(0, k) // truncated
          else if (how === 2)
            raw = Buffer.concat([raw, r.bytes(r.int(8))]) // trailing garbage
          else raw[k] = (raw[k] as number) ^ (1 << r.int(8)) // a bit flip
          if (raw.length === 0) break
        }
      }
      const parsed = parseAdStructures(raw)
      const advert: Advert = advertFromStructures(parsed.structures, { address: 'aa:bb', rssi: -50, ts: i })
      d.decode(advert) // never throws: a throw fails the test here
    }
    const c = d.counters
    expect(c.ibeacon + c.eddystone + c.manufacturer + c.foreign + c.malformed).toBe(N)
    expect(c.malformed).toBeGreaterThan(1_000)
    expect(c.ibeacon).toBeGreaterThan(0) // mutations keep some valid badges: the decoder still works
    results.push({
      what: 'random and mutated advertising data through the AD parser and the decoders',
      tried: N,
      outcome: `no crash; ${c.malformed.toLocaleString('en-US')} malformed counted, ${(c.ibeacon + c.eddystone + c.manufacturer).toLocaleString('en-US')} still decoded`,
    })
  }, 120_000)
})

describe('fuzzing the cloud API with hostile bodies', () => {
  let db: Awaited<ReturnType<typeof tempDatabase>>
  let pool: pg.Pool
  let app: FastifyInstance
  let sql: pg.Client
  let key = ''
  beforeAll(async () => {
    db = await tempDatabase()
    sql = await connect(db.url)
    await maintainPartitions(
      sql,
      { interval: 'month', premake: 1, retentionDays: null, dropDetached: true },
      new Date(),
    )
    const config = loadCloudConfig({
      DATABASE_URL: db.url,
      MAX_BODY_BYTES: '100000',
      GATE_RATE_LIMIT_PER_MIN: '0',
    })
    pool = createPool(config)
    app = await buildApp({ config, pool, log: silentLog })
    key = await addGate(pool, 'fz')
  })
  afterAll(async () => {
    await app?.close()
    await pool?.end()
    await sql?.end()
    await db?.drop()
  })

  it('malformed, oversized, mistyped and hostile batches: each a clear 4xx, nothing stored wrong', async () => {
    const r = prng(7)
    const good = () => ({
      id: uuidv7(),
      gateId: 'fz',
      token: 'abcd0001',
      participantId: 'P-1',
      method: 'ble',
      decision: 'admit',
      reason: null,
      rssi: -60,
      ts: Date.now(),
      monoMs: 1,
      bootId: uuidv7(),
      bootSeq: 1,
      rosterVersion: 1,
    })
    const values = [
      null,
      true,
      -1,
      1e308,
      Number.NaN,
      '',
      'x'.repeat(5000),
      [],
      {},
      { $gt: '' },
      "'; DROP TABLE gates; --",
    ]
    const bodies: Array<{ payload: string | Buffer; headers?: Record<string, string> }> = [
      { payload: '' },
      { payload: '{' },
      { payload: 'null' },
      { payload: '[]' },
      { payload: '"batch"' },
      { payload: '{"gateId":"fz","sentAt":1,"records":[]}' },
      { payload: JSON.stringify({ gateId: 'fz', sentAt: Date.now(), records: Array(6000).fill(good()) }) },
      { payload: `{"a":${'['.repeat(5000)}${']'.repeat(5000)}}` },
      { payload: '{"__proto__":{"polluted":1},"gateId":"fz","sentAt":1,"records":[1]}' },
      { payload: gzipSync(Buffer.alloc(5_000_000, 32)), headers: { 'content-encoding': 'gzip' } }, // a gzip bomb
      { payload: Buffer.from('not gzip'), headers: { 'content-encoding': 'gzip' } },
      { payload: '{}', headers: { 'content-encoding': 'br' } },
      { payload: 'gateId=fz', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    ]
    // every field of a record, replaced by every hostile value
    for (const field of Object.keys(good())) {
      for (const v of values) {
        const rec: Record<string, unknown> = good()
        rec[field] = v
        bodies.push({ payload: JSON.stringify({ gateId: 'fz', sentAt: Date.now(), records: [rec] }) })
      }
    }
    // and random mutations of a valid batch's text
    for (let i = 0; i < 300; i++) {
      const text = JSON.stringify({ gateId: 'fz', sentAt: Date.now(), records: [good()] }).split('')
      for (let k = 0; k < 1 + r.int(4); k++) text[r.int(text.length)] = String.fromCharCode(32 + r.int(95))
      bodies.push({ payload: text.join('') })
    }
    const before = Number((await sql.query('SELECT count(*) AS n FROM attendance_records')).rows[0].n)
    let clear = 0
    let accepted = 0
    for (const b of bodies) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/sync/checkins',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...(b.headers ?? {}) },
        payload: b.payload,
      })
      expect(res.statusCode, String(b.payload).slice(0, 80)).toBeLessThan(500)
      if (res.statusCode >= 400) {
        expect(res.json().error.message.length, String(b.payload).slice(0, 80)).toBeGreaterThan(5)
        clear++
      } else accepted += res.json().accepted as number
    }
    // the service is alive and stored exactly the valid records some mutations left
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    const after = Number((await sql.query('SELECT count(*) AS n FROM attendance_records')).rows[0].n)
    expect(after - before).toBe(accepted)
    const wrong = await sql.query("SELECT count(*) AS n FROM attendance_records WHERE gate_id <> 'fz'")
    expect(Number(wrong.rows[0].n)).toBe(0)
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
    results.push({
      what: 'malformed, oversized, mistyped and hostile HTTP bodies to the batch endpoint',
      tried: bodies.length,
      outcome: `${clear} clear 4xx, ${bodies.length - clear} accepted as valid; no 5xx, the service up, nothing stored wrong`,
      lost: 0,
    })
  }, 120_000)
})

describe('fuzzing the fleet monitor with MQTT garbage', () => {
  it('counts and logs garbage on every fleet topic and keeps tracking real gates', async () => {
    const MQTT_URL = process.env['MQTT_URL'] ?? 'mqtt://127.0.0.1:1883'
    const m = new FleetMonitor({
      url: MQTT_URL,
      group: `fz${process.pid}`,
      silentAfterMs: 60_000,
      maxTemperatureC: 80,
      log: silentLog,
      registry: new Registry(),
      onAlert: () => {},
    })
    await m.start()
    await new Promise((res) => setTimeout(res, 500))
    const c = await mqtt.connectAsync(MQTT_URL)
    const r = prng(99)
    const gate = `fz-${process.pid}`
    const payloads = [
      Buffer.from('not json'),
      Buffer.from('{"v":1}'),
      Buffer.from('null'),
      Buffer.from('[]'),
      Buffer.from(
        JSON.stringify({ v: 1, ts: -1, gateId: gate, bootId: 'x', session: 1, seq: 1, state: 'online' }),
      ),
      Buffer.from(JSON.stringify({ v: 1, ts: 1, gateId: 'another', bootId: uuidv7(), session: 1, seq: 1 })),
      Buffer.alloc(200_000, 0x7b),
    ]
    for (let i = 0; i < 200; i++) payloads.push(r.bytes(r.int(300)))
    let sent = 0
    for (const p of payloads) {
      for (const t of ['status', 'metrics', 'events']) {
        await c.publishAsync(`gates/${gate}/${t}`, p, { qos: 1 })
        sent++
      }
    }
    await new Promise((res) => setTimeout(res, 1_000))
    expect(m.stats.garbage).toBeGreaterThanOrEqual(sent - 5) // every one (a few random ones may be empty)
    expect(m.get(gate)?.state ?? 'never seen').not.toBe('online')
    // still working: a valid status is taken
    await c.publishAsync(
      `gates/${gate}/status`,
      JSON.stringify({
        v: 1,
        ts: Date.now(),
        gateId: gate,
        bootId: '0193a8f0-0000-7000-8000-000000000000',
        session: 1,
        seq: 0,
        state: 'online',
        version: '0.1.0',
        startedAt: new Date().toISOString(),
      }),
      { qos: 1, retain: false },
    )
    await new Promise((res) => setTimeout(res, 500))
    expect(m.get(gate)?.state).toBe('online')
    await c.endAsync()
    await m.stop()
    results.push({
      what: 'garbage MQTT payloads on every fleet topic (not JSON, wrong schema, another gate, 200 kB, random bytes)',
      tried: sent,
      outcome: `${m.stats.garbage} counted as garbage; the monitor kept running and took the next valid status`,
    })
  }, 60_000)
})

describe('fuzzing configuration files and command lines', () => {
  const tmp = tempDir()
  afterAll(() => tmp.cleanup())

  it('mutated agent configuration files: each valid or one clear error, never a crash', () => {
    const r = prng(3)
    const base = JSON.stringify({
      gateId: 'north-1',
      source: { kind: 'sim', sim: { participants: 10, seed: 1 } },
      decoders: { ibeacon: { uuid: 'e2c56db5-dffb-48d2-b060-d0f5a71096e0' } },
      proximity: { enterDbm: -65 },
      dedup: { windowMs: 300000 },
      cloud: { url: 'https://gates.example.org', batchSize: 100 },
    })
    const file = path.join(tmp.dir, 'agent.json')
    let valid = 0
    let refused = 0
    const N = 3_000
    for (let i = 0; i < N; i++) {
      const text = base.split('')
      for (let k = 0; k < 1 + r.int(3); k++) {
        const at = r.int(text.length)
        if (r.next() < 0.5) text[at] = String.fromCharCode(32 + r.int(95))
        else text.splice(at, 1)
      }
      writeFileSync(file, text.join(''))
      try {
        loadAgentConfig({ file, env: {} })
        valid++
      } catch (err) {
        expect(isGateError(err), String(err)).toBe(true) // a GateError with every problem, not a TypeError
        expect((err as Error).message.length).toBeGreaterThan(10)
        refused++
      }
    }
    expect(refused).toBeGreaterThan(N / 2)
    results.push({
      what: 'mutated agent configuration files',
      tried: N,
      outcome: `${refused} refused with every problem listed, ${valid} still valid; never a crash`,
    })
  })

  const run = (bin: string, args: string[], env: Record<string, string> = {}) =>
    new Promise<{ code: number; out: string }>((resolve) =>
      execFile(
        process.execPath,
        [bin, ...args],
        { env: cleanEnv(env), timeout: 30_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr }),
      ),
    )

  it('hostile command lines and environments: a usage error or a clear message, never a stack trace', async () => {
    const dataDir = path.join(tmp.dir, 'data')
    const cases: Array<[string, string[], Record<string, string>?]> = [
      [GATECTL_BIN, ['--data-dir', dataDir, 'nosuchcommand']],
      [GATECTL_BIN, ['--data-dir', dataDir, 'decode', 'zz']],
      [GATECTL_BIN, ['--data-dir', dataDir, 'decode', 'f'.repeat(10_001)]],
      [GATECTL_BIN, ['--data-dir', dataDir, 'checkins', '--limit', '-5']],
      [GATECTL_BIN, ['--data-dir', dataDir, 'tail', '--count', 'many']],
      [GATECTL_BIN, ['--data-dir', dataDir, 'tail', '--timeout', 'abc']],
      [GATECTL_BIN, ['--data-dir', dataDir, 'capture', '--duration', '3000000']],
      [GATECTL_BIN, ['--data-dir', dataDir, 'roster', 'lookup', "'; DROP TABLE roster; --"]],
      [GATECTL_BIN, ['--data-dir', '/proc/nope', 'status']],
      [GATECTL_BIN, ['--data-dir', dataDir, 'roster', 'import', '/etc/shadow-nope']],
      [GATECTL_BIN, ['--data-dir', dataDir, 'capture', '--seconds', '1e9']],
      [AGENT_BIN, ['run', '--data-dir', dataDir, '--source', 'bluetooth-ish']],
      [AGENT_BIN, ['run', '--data-dir', dataDir, '--source', 'sim', '--log-level', 'shout']],
      [AGENT_BIN, ['run', '--data-dir', dataDir, '--config', '/dev/null']],
      [AGENT_BIN, ['run', '--data-dir', dataDir, '--source', 'sim'], { GATE_RSSI_THRESHOLD: 'loud' }],
      [
        AGENT_BIN,
        ['run', '--data-dir', dataDir, '--source', 'sim'],
        { GATE_CLOUD_URL: 'javascript:alert(1)' },
      ],
      [AGENT_BIN, ['frobnicate']],
      [CLOUD_BIN_PATH(), ['serve'], { DATABASE_URL: 'not a url', PORT: '99999' }],
      [
        CLOUD_BIN_PATH(),
        ['gates', 'add', "x'; DROP TABLE gates; --"],
        { DATABASE_URL: 'postgres://127.0.0.1:1/x' },
      ],
      [CLOUD_BIN_PATH(), ['up', '--gates', '-3', '--port', 'http']],
    ]
    for (const [bin, args, env] of cases) {
      const r = await run(bin, args, env)
      const what = `${path.basename(bin)} ${args.join(' ').slice(0, 60)}`
      expect(r.code, what).not.toBe(0)
      expect(r.out, what).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m) // no stack trace for the user
      expect(r.out.trim().length, what).toBeGreaterThan(10)
    }
    results.push({
      what: 'hostile command lines and environments (gatectl, gate-agent, gate-cloud)',
      tried: cases.length,
      outcome: 'each refused with a clear message and a non-zero exit code; no stack trace',
    })
  }, 180_000)
})

function CLOUD_BIN_PATH(): string {
  return path.resolve(import.meta.dirname, '..', '..', 'bin', 'gate-cloud.js')
}
