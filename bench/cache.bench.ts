/**
 * npm run bench:cache [-- --ops 200000 --tokens 100000 --l1 1000 --concurrency 64 --rounds 3 --http-seconds 10]
 *
 * 1. A Zipf token look-up workload (s = 1, like a crowd where some badges are seen far more often)
 *    through our two-tier cache and through BentoCache, with the same L1 size, the same Redis and the
 *    same Postgres loader, in one run: ops/s, hit rate, p50/p99. Rounds alternate and medians are
 *    reported (this machine is noisy).
 * 2. Over HTTP (autocannon, against `gate-cloud serve` compiled, with Redis): the token look-up route
 *    against the same server's trivial route (/healthz), measured in the same run.
 */
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis'
import { Redis } from 'ioredis'
import pg from 'pg'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { connectRedis } from '../cloud/cache/redis.js'
import { cacheDefaults, TieredCache } from '../cloud/cache/tiered-cache.js'
import { migrateUp } from '../cloud/db/migrate.js'
import { fmt, printTable, scratchDatabase, startService } from './harness.js'

const { values: args } = parseArgs({
  options: {
    ops: { type: 'string', default: '200000' },
    tokens: { type: 'string', default: '100000' },
    l1: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
    'http-seconds': { type: 'string', default: '10' },
  },
})
const OPS = Number(args.ops)
const TOKENS = Number(args.tokens)
const L1 = Number(args.l1)
const CONC = Number(args.concurrency)
const ROUNDS = Number(args.rounds)
const HTTP_SECONDS = Number(args['http-seconds'])
const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379'
const OPS_TOKEN = randomBytes(16).toString('hex')

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const tokenOf = (i: number) => (i + 1).toString(16).padStart(8, '0')

/** A deterministic Zipf(s = 1) sequence of token indexes. */
function zipfSequence(n: number, count: number, seed: number): Uint32Array {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1)
    cdf[i] = sum
  }
  let a = seed >>> 0
  const rnd = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const out = new Uint32Array(count)
  for (let k = 0; k < count; k++) {
    const u = rnd() * sum
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cdf[mid] as number) >= u) hi = mid
      else lo = mid + 1
    }
    // spread the popular ranks over the token space
    out[k] = (Math.imul(lo, 2654435761) >>> 0) % n
  }
  return out
}

interface RunResult {
  opsPerS: number
  hitRate: number
  p50Ms: number
  p99Ms: number
}

async function drive(
  seq: Uint32Array,
  get: (token: string) => Promise<unknown>,
  loads: () => number,
): Promise<RunResult> {
  const lat = new Float64Array(seq.length)
  const warm = Math.floor(seq.length / 4)
  // warm-up: the first quarter fills L1 and L2; measured: the rest
  let next = 0
  const worker = async (measure: boolean, end: number) => {
    for (;;) {
      const k = next++
      if (k >= end) return
      const t0 = performance.now()
      await get(tokenOf(seq[k] as number))
      if (measure) lat[k] = performance.now() - t0
    }
  }
  await Promise.all(Array.from({ length: CONC }, () => worker(false, warm)))
  const loads0 = loads()
  const t0 = performance.now()
  await Promise.all(Array.from({ length: CONC }, () => worker(true, seq.length)))
  const seconds = (performance.now() - t0) / 1000
  const measured = seq.length - warm
  const sorted = Array.from(lat.subarray(warm)).sort((a, b) => a - b)
  return {
    opsPerS: measured / seconds,
    hitRate: 1 - (loads() - loads0) / measured,
    p50Ms: sorted[Math.floor(0.5 * sorted.length)] as number,
    p99Ms: sorted[Math.floor(0.99 * sorted.length)] as number,
  }
}

async function main(): Promise<void> {
  const scratch = await scratchDatabase('gc_cachebench')
  const dbUrl = scratch.url
  let service: Awaited<ReturnType<typeof startService>> | null = null
  const silent = pino({ level: 'silent' })
  try {
    const sql = new pg.Client({ connectionString: dbUrl })
    sql.on('error', () => {})
    await sql.connect()
    await migrateUp(sql)
    await sql.query(
      `INSERT INTO participants (id, token, status, name, email)
       SELECT 'P-' || i, lpad(to_hex(i), 8, '0'), 'active', 'Participant ' || i, 'p' || i || '@example.org'
         FROM generate_series(1, $1::int) AS i`,
      [TOKENS],
    )
    await sql.query('ANALYZE participants')
    const pool = new pg.Pool({ connectionString: dbUrl, max: 16 })
    const byToken = async (t: string) =>
      (
        await pool.query(
          `SELECT id, token, status, name, email FROM participants WHERE token = $1 AND status = 'active'`,
          [t],
        )
      ).rows[0] ?? null

    console.log(
      `bench:cache  node ${process.version}, ${os.cpus().length} CPUs; ${fmt(TOKENS)} tokens, Zipf s=1, ${fmt(OPS)} look-ups (first quarter warm-up), ${CONC} concurrent, L1 ${fmt(L1)} entries, Redis ${REDIS_URL.replace(/\/\/.*@/, '//')}, loader: Postgres\n`,
    )
    const ours: RunResult[] = []
    const bento: RunResult[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const seq = zipfSequence(TOKENS, OPS, 1234 + r)
      {
        process.stderr.write(`round ${r + 1}: ours ...\n`)
        const pair = connectRedis({ url: REDIS_URL, commandTimeoutMs: 200 }, silent)
        await new Promise((res) => setTimeout(res, 200))
        let loads = 0
        const c = new TieredCache({
          ...cacheDefaults,
          l1MaxEntries: L1,
          redis: pair?.client ?? null,
          subscriber: pair?.subscriber ?? null,
          keyPrefix: `bench:ours:${r}:${randomBytes(3).toString('hex')}:`,
          log: silent,
          registry: new Registry(),
          hotHits: Number.MAX_SAFE_INTEGER, // same behaviour as the peer: no refresh-ahead
        })
        await c.start()
        ours.push(
          await drive(
            seq,
            (t) =>
              c.getOrLoad(
                `tok:${t}`,
                async () => {
                  loads++
                  return byToken(t)
                },
                { ttlMs: 300_000 },
              ),
            () => loads,
          ),
        )
        await c.stop()
        await pair?.close()
      }
      {
        process.stderr.write(`round ${r + 1}: BentoCache ...\n`)
        const conn = new Redis(REDIS_URL)
        let loads = 0
        const bc = new BentoCache({
          default: 'c',
          prefix: `bench:bento:${r}:${randomBytes(3).toString('hex')}`,
          stores: {
            c: bentostore()
              .useL1Layer(memoryDriver({ maxItems: L1 }))
              .useL2Layer(redisDriver({ connection: conn }))
              .useBus(
                redisBusDriver({
                  connection: {
                    host: new URL(REDIS_URL).hostname,
                    port: Number(new URL(REDIS_URL).port || 6379),
                  },
                }),
              ),
          },
        })
        bento.push(
          await drive(
            seq,
            (t) =>
              bc.getOrSet({
                key: `tok:${t}`,
                ttl: '5m',
                factory: async () => {
                  loads++
                  return byToken(t)
                },
              }),
            () => loads,
          ),
        )
        await bc.disconnectAll()
        conn.disconnect()
      }
    }
    await pool.end()

    // 2. over HTTP
    process.stderr.write('HTTP: gate-cloud serve with Redis, autocannon ...\n')
    // the service as shipped: its default L1 (100,000 entries, 32 MiB), not the comparison's
    service = await startService({ DATABASE_URL: dbUrl, REDIS_URL, OPS_TOKEN })
    const url = service.url
    const seq = zipfSequence(TOKENS, 200_000, 99)
    let k = 0
    const cannon = (path: string | null) =>
      autocannon({
        url,
        connections: 32,
        duration: HTTP_SECONDS,
        headers: { authorization: `Bearer ${OPS_TOKEN}` },
        requests: [
          {
            method: 'GET',
            setupRequest: (req) => ({
              ...req,
              path: path ?? `/v1/query/tokens/${tokenOf(seq[k++ % seq.length] as number)}`,
            }),
          },
        ],
      })
    // warm the server, then alternate the two routes (this machine is noisy): medians of the rounds
    await cannon('/healthz')
    await cannon(null)
    const triv: autocannon.Result[] = []
    const look: autocannon.Result[] = []
    for (let r = 0; r < Math.max(1, ROUNDS); r++) {
      triv.push(await cannon('/healthz'))
      look.push(await cannon(null))
    }
    const mid = (xs: autocannon.Result[]) =>
      [...xs].sort((a, b) => a.requests.average - b.requests.average)[
        Math.floor(xs.length / 2)
      ] as autocannon.Result
    const trivial = mid(triv)
    const lookup = mid(look)
    const lookupP99 = median(look.map((x) => x.latency.p99))

    const o = {
      ops: median(ours.map((x) => x.opsPerS)),
      hit: median(ours.map((x) => x.hitRate)),
      p50: median(ours.map((x) => x.p50Ms)),
      p99: median(ours.map((x) => x.p99Ms)),
    }
    const b = {
      ops: median(bento.map((x) => x.opsPerS)),
      hit: median(bento.map((x) => x.hitRate)),
      p50: median(bento.map((x) => x.p50Ms)),
      p99: median(bento.map((x) => x.p99Ms)),
    }
    const rows: string[][] = [
      ['measure', 'ours', 'BentoCache 1.6.1', 'target', 'verdict'],
      [
        'look-ups/s (median of rounds)',
        `${fmt(o.ops)} (${ours.map((x) => fmt(x.opsPerS)).join(', ')})`,
        `${fmt(b.ops)} (${bento.map((x) => fmt(x.opsPerS)).join(', ')})`,
        '>= peer',
        o.ops >= b.ops ? 'met' : 'MISSED',
      ],
      [
        'hit rate (L1 or L2)',
        `${fmt(o.hit * 100, 2)} %`,
        `${fmt(b.hit * 100, 2)} %`,
        '>= peer',
        o.hit >= b.hit - 0.0005 ? 'met' : 'MISSED',
      ],
      ['latency p50', `${fmt(o.p50, 3)} ms`, `${fmt(b.p50, 3)} ms`, '', ''],
      ['latency p99', `${fmt(o.p99, 3)} ms`, `${fmt(b.p99, 3)} ms`, '', ''],
    ]
    const http: string[][] = [
      [
        'HTTP (autocannon, 32 connections, median of rounds)',
        'requests/s',
        'p50',
        'p99',
        'target',
        'verdict',
      ],
      [
        'trivial route GET /healthz',
        `${fmt(trivial.requests.average)} (${triv.map((x) => fmt(x.requests.average)).join(', ')})`,
        `${fmt(trivial.latency.p50, 1)} ms`,
        `${fmt(trivial.latency.p99, 1)} ms`,
        '',
        '',
      ],
      [
        'token look-up GET /v1/query/tokens/:token (Zipf)',
        `${fmt(lookup.requests.average)} (${look.map((x) => fmt(x.requests.average)).join(', ')})`,
        `${fmt(lookup.latency.p50, 1)} ms`,
        `${fmt(lookupP99, 1)} ms (${look.map((x) => fmt(x.latency.p99)).join(', ')})`,
        'p99 < 10 ms',
        lookupP99 < 10 ? 'met' : 'MISSED',
      ],
      [
        'look-up : trivial',
        fmt(lookup.requests.average / trivial.requests.average, 2),
        '',
        '',
        '>= 0.6',
        lookup.requests.average / trivial.requests.average >= 0.6 ? 'met' : 'MISSED',
      ],
      [
        'non-2xx answers and errors (look-up runs)',
        fmt(look.reduce((a, x) => a + x.non2xx + x.errors, 0)),
        '',
        '',
        '0',
        look.every((x) => x.non2xx === 0 && x.errors === 0) ? 'met' : 'MISSED',
      ],
    ]
    for (const t of [rows, http]) {
      printTable(t)
      console.log('')
    }
    await sql.end()
  } finally {
    await service?.stop()
    await scratch.drop()
  }
}

await main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
