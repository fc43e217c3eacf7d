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
import { parseArgs } from 'node:util'
import pg from 'pg'
import { pino } from 'pino'
import { driveBento, driveOurs } from './cache/contenders.js'
import type { RunResult } from './cache/drive.js'
import { httpRounds } from './cache/http.js'
import { printReport } from './cache/report.js'
import { PARTICIPANTS_SQL, zipfSequence } from './cache/workload.js'
import { fmt, startService } from './harness.js'
import { migratedScratch } from './support/scratch.js'

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

async function main(): Promise<void> {
  const { url: dbUrl, sql, drop } = await migratedScratch('gc_cachebench')
  let service: Awaited<ReturnType<typeof startService>> | null = null
  const silent = pino({ level: 'silent' })
  try {
    await sql.query(PARTICIPANTS_SQL, [TOKENS])
    await sql.query('ANALYZE participants')
    const pool = new pg.Pool({ connectionString: dbUrl, max: 16 })
    const byToken = async (t: string) =>
      (
        await pool.query(
          `SELECT id, token, status, name, email FROM participants WHERE token = $1 AND status = 'active'`,
          [t],
        )
      ).rows[0] ?? null

    // 1. the two caches, round after round
    console.log(
      `bench:cache  node ${process.version}, ${os.cpus().length} CPUs; ${fmt(TOKENS)} tokens, Zipf s=1, ${fmt(OPS)} look-ups (first quarter warm-up), ${CONC} concurrent, L1 ${fmt(L1)} entries, Redis ${REDIS_URL.replace(/\/\/.*@/, '//')}, loader: Postgres\n`,
    )
    const ours: RunResult[] = []
    const bento: RunResult[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const seq = zipfSequence(TOKENS, OPS, 1234 + r)
      const round = { round: r, seq, l1: L1, concurrency: CONC, redisUrl: REDIS_URL, load: byToken }
      process.stderr.write(`round ${r + 1}: ours ...\n`)
      ours.push(await driveOurs(round, silent))
      process.stderr.write(`round ${r + 1}: BentoCache ...\n`)
      bento.push(await driveBento(round))
    }
    await pool.end()

    // 2. over HTTP
    process.stderr.write('HTTP: gate-cloud serve with Redis, autocannon ...\n')
    // the service as shipped: its default L1 (100,000 entries, 32 MiB), not the comparison's
    service = await startService({ DATABASE_URL: dbUrl, REDIS_URL, OPS_TOKEN })
    const http = await httpRounds(service.url, OPS_TOKEN, {
      tokens: TOKENS,
      seconds: HTTP_SECONDS,
      rounds: ROUNDS,
    })

    printReport(ours, bento, http)
    await sql.end()
  } finally {
    await service?.stop()
    await drop()
  }
}

await main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
