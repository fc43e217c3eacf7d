/**
 * npm run bench:ingest [-- --seconds 30 --gates 16 --batch 1000 --backlog 1000000]
 *
 * Simulated gates sync concurrently to one gate-cloud service (a separate process, compiled) on
 * this machine, over HTTP with gzip, exactly as agents do. Reported: records/s stored end to end and
 * p50/p99 batch latency; in the same run and on the same schema, the practical ceiling (a plain COPY
 * of the same rows) and the naive path (one INSERT per record). Then a gate with a backlog of
 * buffered check-ins (a day offline) drains it while it keeps deciding, and its decision latency
 * is measured during the drain.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { loadCloudConfig } from '../cloud/config.js'
import { createPool } from '../cloud/db/pool.js'
import { fmt, type startService } from './harness.js'
import { backlogDrain } from './ingest/backlog.js'
import { baselines } from './ingest/baselines.js'
import { monthlyPartitions, registerGates, rosterImporter, startIngestService } from './ingest/cloud.js'
import { endToEnd } from './ingest/end-to-end.js'
import { incidentsOf, printReport } from './ingest/report.js'
import { Checkins, gzippedBatches } from './ingest/workload.js'
import { migratedScratch } from './support/scratch.js'

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    gates: { type: 'string', default: '16' },
    batch: { type: 'string', default: '1000' },
    backlog: { type: 'string', default: '1000000' },
  },
})
const SECONDS = Number(args.seconds)
const GATES = Number(args.gates)
const BATCH = Number(args.batch)
const BACKLOG = Number(args.backlog)
/** batches are prepared for at most this rate (records/s) over the run */
const RATE_CAP = 100_000

async function main(): Promise<void> {
  const { url: dbUrl, sql, drop } = await migratedScratch('gc_bench')
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'gate-ingest-bench-'))
  let service: Awaited<ReturnType<typeof startService>> | null = null
  try {
    await monthlyPartitions(sql)
    const pool = createPool(loadCloudConfig({ DATABASE_URL: dbUrl }))
    // the gates that upload, and one more: the gate with the backlog
    const keys = await registerGates(pool, GATES + 1)

    service = await startIngestService(dbUrl)
    const url = service.url
    console.log(
      `bench:ingest  node ${process.version}, ${os.cpus().length} CPUs, Postgres ${(await sql.query('SHOW server_version')).rows[0].server_version}`,
    )
    console.log(
      `${GATES} gates x batches of ${BATCH} for ${SECONDS} s, gzip over HTTP to one gate-cloud process\n`,
    )

    // 1. end to end
    // the gates' batches are built and compressed before the clock starts, as a gate has them ready
    // in its outbox: the load generator shares this machine with the service and Postgres, and its
    // own work (making records, JSON, gzip) is a gate's cost, not the cloud's. The COPY baseline
    // below likewise gets its rows ready-made.
    process.stderr.write('end to end: preparing batches ...\n')
    const checkins = new Checkins()
    const perGate = Math.ceil((RATE_CAP * SECONDS) / GATES / BATCH)
    const bodies = gzippedBatches(checkins, GATES, perGate, BATCH)
    const importRoster = rosterImporter(sql, url)
    await importRoster(checkins.made)
    process.stderr.write('end to end ...\n')
    const e2e = await endToEnd({
      url,
      keys,
      bodies,
      seconds: SECONDS,
      servicePid: service.pid,
      dbName: new URL(dbUrl).pathname.slice(1),
    })

    // 2. baselines on the same schema, the same kind of rows
    process.stderr.write('baselines: COPY and one INSERT per record ...\n')
    const base = await baselines(sql, checkins)

    // 3. a gate back online with a backlog drains it while deciding
    process.stderr.write(`backlog: ${fmt(BACKLOG)} buffered check-ins on one gate ...\n`)
    const drain = await backlogDrain({
      sql,
      url,
      gateId: `bench-${GATES}`,
      gateKey: keys[GATES],
      dir: tmp,
      backlog: BACKLOG,
      checkins,
      importRoster,
    })

    printReport({ e2e, base, drain, incidents: await incidentsOf(sql) }, { batch: BATCH, backlog: BACKLOG })
    await pool.end()
    await sql.end()
  } finally {
    await service?.stop()
    await drop()
    rmSync(tmp, { recursive: true, force: true })
  }
}

await main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
