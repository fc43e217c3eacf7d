import type pg from 'pg'
import { pino } from 'pino'
import { newProgram } from '../shared/command-line.js'
import { errorMessage, GateError } from '../shared/errors.js'
import { readRosterFile } from '../shared/roster-file.js'
import { type CloudConfig, loadCloudConfig } from './config.js'
import { migrateUp } from './db/migrate.js'
import { connectClient, createPool } from './db/pool.js'
import { EXIT } from './exit-codes.js'
import { addGate, listGates, revokeGate, rotateKey } from './gates/store.js'
import { serviceLogger } from './log.js'
import { loadRules } from './monitor/recovery.js'
import { analyzeQueries, maintainTables } from './ops/analyze.js'
import { importParticipants } from './participants/import.js'
import { listPartitions } from './partitions/manager.js'
import { maintainAllPartitions } from './partitions/policies.js'
import { buildRouter } from './routing/router.js'
import { serve } from './server.js'

function config(): CloudConfig {
  return loadCloudConfig(process.env)
}

/** Run a command body with a connected client and turn failures into one clear line and an exit code. */
function withClient(fn: (client: pg.Client, c: CloudConfig) => Promise<number | undefined>) {
  return async (): Promise<void> => {
    let client: pg.Client | null = null
    try {
      const c = config()
      try {
        client = await connectClient(c.databaseUrl, 'gate-cloud-cli')
      } catch (err) {
        console.error(`gate-cloud: cannot connect to the database (DATABASE_URL): ${errorMessage(err)}`)
        process.exitCode = EXIT.database
        return
      }
      process.exitCode = (await fn(client, c)) ?? EXIT.ok
    } catch (err) {
      console.error(`gate-cloud: ${errorMessage(err)}`)
      const code = err instanceof GateError ? err.code : ''
      process.exitCode =
        code === 'E_NOT_FOUND'
          ? EXIT.notFound
          : code === 'E_INPUT' || code === 'E_CONFIG_INVALID'
            ? EXIT.usage
            : EXIT.failure
    } finally {
      await client?.end().catch(() => {})
    }
  }
}

/** Pool-based commands (the gate store uses a pool for its transactions). */
function withPool(fn: (pool: pg.Pool, c: CloudConfig) => Promise<number | undefined>) {
  return withClient(async (_client, c) => {
    const pool = createPool({ ...c, poolMax: 2 })
    try {
      return await fn(pool, c)
    } finally {
      await pool.end()
    }
  })
}

/** `gate-cloud serve`: every bad setting (and a bad rules file) stops the start with exit 2. */
async function serveCommand(): Promise<number> {
  let c: CloudConfig
  try {
    c = config()
    loadRules(c.alerts.rulesFile) // a bad rules file stops the start, like any bad setting
  } catch (err) {
    console.error(`gate-cloud: ${errorMessage(err)}`)
    return EXIT.usage
  }
  return serve(c, serviceLogger(c))
}

async function router(opts: {
  backends?: string
  host: string
  port: string
  pollMs: string
}): Promise<number> {
  const list = (opts.backends ?? process.env['ROUTER_BACKENDS'] ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
  const port = Number(opts.port)
  const pollMs = Number(opts.pollMs)
  const problems: string[] = []
  if (list.length === 0)
    problems.push('no backends: --backends http://node-1:8080,http://node-2:8080 (or ROUTER_BACKENDS)')
  for (const b of list) {
    try {
      if (!/^https?:$/.test(new URL(b).protocol)) problems.push(`backend ${b}: http(s) URLs only`)
    } catch {
      problems.push(`backend ${b}: not a URL`)
    }
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`--port ${opts.port}: not a port`)
  if (!Number.isInteger(pollMs) || pollMs < 100) problems.push(`--poll-ms ${opts.pollMs}: at least 100`)
  if (problems.length > 0) {
    console.error(`gate-cloud router: invalid options:\n  - ${problems.join('\n  - ')}`)
    return EXIT.usage
  }
  const log = pino({ name: 'gate-cloud-router', level: process.env['LOG_LEVEL'] ?? 'info' })
  const { app } = await buildRouter({ backends: list, log, pollMs })
  await app.listen({ host: opts.host, port })
  return new Promise<number>((resolve) => {
    const stop = () => {
      app.close().then(() => resolve(EXIT.ok))
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
}

const program = newProgram(
  'gate-cloud',
  'cloud service for BLE gates: batch sync, roster, query API (settings from the environment: DATABASE_URL, PORT, ...)',
)

program
  .command('serve')
  .description('run the HTTP service (migrates the schema and maintains partitions on a schedule)')
  .action(async () => {
    process.exitCode = await serveCommand()
  })

program
  .command('router')
  .description(
    'an HTTP front for several gate-cloud nodes: load-aware routing by request class, outlier ejection',
  )
  .option('--backends <urls>', 'comma-separated node URLs (or ROUTER_BACKENDS)')
  .option('--host <host>', 'listen address', process.env['ROUTER_HOST'] ?? '127.0.0.1')
  .option('--port <port>', 'listen port', process.env['ROUTER_PORT'] ?? '8000')
  .option('--poll-ms <ms>', 'load poll interval of each node', '1000')
  .action(async (opts: { backends?: string; host: string; port: string; pollMs: string }) => {
    process.exitCode = await router(opts)
  })

program
  .command('migrate')
  .description('bring the database schema up to date (re-runnable)')
  .action(
    withClient(async (client) => {
      const r = await migrateUp(client)
      console.log(r.applied.length ? `applied: ${r.applied.join(', ')}` : 'schema is up to date')
      return EXIT.ok
    }),
  )

program
  .command('analyze')
  .description('EXPLAIN (ANALYZE, BUFFERS) of the critical queries on the live data, with suggestions')
  .option('--json', 'machine-readable output')
  .action(async (opts: { json?: boolean }) =>
    withClient(async (client) => {
      const r = await analyzeQueries(client)
      if (opts.json) {
        console.log(JSON.stringify(r, null, 2))
        return EXIT.ok
      }
      for (const q of r.queries) {
        console.log(`${q.name}\n  ${q.sql}`)
        console.log(
          `  ${q.executionMs.toFixed(2)} ms (planning ${q.planningMs.toFixed(2)} ms), buffers hit ${q.sharedHitBlocks} read ${q.sharedReadBlocks}`,
        )
        console.log(
          `  indexes: ${q.indexes.join(', ') || 'none'}${q.seqScans.length ? `; sequential scans: ${q.seqScans.join(', ')}` : ''}`,
        )
        if (q.partitionsTotal)
          console.log(
            `  partitions: ${q.partitionsScanned} scanned, ${q.partitionsTotal - q.partitionsScanned} pruned of ${q.partitionsTotal}`,
          )
        for (const s of q.suggestions) console.log(`  suggestion: ${s}`)
      }
      for (const g of r.general) console.log(`note: ${g}`)
      if (r.topStatements) {
        console.log('top statements (pg_stat_statements, by total time):')
        for (const t of r.topStatements)
          console.log(
            `  ${t.totalMs.toFixed(0)} ms total, ${t.calls} calls, ${t.meanMs.toFixed(2)} ms mean: ${t.query}`,
          )
      }
      return EXIT.ok
    })(),
  )

program
  .command('maintain')
  .description('VACUUM (ANALYZE) the hot tables, outside transactions')
  .action(
    withClient(async (client) => {
      for (const s of await maintainTables(client)) console.log(`${s.step}: ${s.ms} ms`)
      return EXIT.ok
    }),
  )

const partitions = program.command('partitions').description('attendance_records partitions')
partitions
  .command('list')
  .description('partitions with bounds, row counts and sizes')
  .option('--json', 'machine-readable output')
  .action(async (opts: { json?: boolean }) =>
    withClient(async (client) => {
      const parts = await listPartitions(client, { exact: true })
      if (opts.json) console.log(JSON.stringify(parts, null, 2))
      else
        for (const p of parts) {
          const range = p.isDefault
            ? 'DEFAULT'
            : `${p.from?.toISOString().slice(0, 10)} .. ${p.to?.toISOString().slice(0, 10)}`
          console.log(
            `${p.name.padEnd(30)} ${range.padEnd(24)} ${String(p.rows).padStart(10)} rows ${(p.bytes / 1024).toFixed(0).padStart(8)} kB`,
          )
        }
      return EXIT.ok
    })(),
  )
partitions
  .command('maintain')
  .description('create partitions ahead, move rows out of the default partition, apply retention')
  .action(
    withClient(async (client, c) => {
      const r = await maintainAllPartitions(client, c)
      console.log(JSON.stringify(r, null, 2))
      return r.attendance_records.conflicts.length || r.gate_metrics.conflicts.length ? EXIT.failure : EXIT.ok
    }),
  )

const gates = program.command('gates').description('gates and their API keys')
gates
  .command('add <gateId>')
  .description('register a gate and print its key (shown once, stored hashed)')
  .option('--name <name>', 'a human name')
  .option('--event <eventId>', "the gate's event: it pulls that event's roster only")
  .action((gateId: string, opts: { name?: string; event?: string }) =>
    withPool(async (pool) => {
      const key = await addGate(pool, gateId, { name: opts.name, eventId: opts.event })
      console.log(key)
      console.error(
        `gate ${gateId} added. Put the key above in the gate's /etc/gate-agent/secrets.env as GATE_KEY=...; it is not shown again.`,
      )
      return EXIT.ok
    })(),
  )
gates
  .command('rotate <gateId>')
  .description('issue a new key; old keys keep working for --grace seconds (default 0: revoked now)')
  .option('--grace <s>', 'seconds the old keys stay valid', '0')
  .action((gateId: string, opts: { grace: string }) =>
    withPool(async (pool) => {
      const grace = Number(opts.grace)
      if (!Number.isFinite(grace) || grace < 0)
        throw new GateError('E_INPUT', '--grace must be a number of seconds >= 0')
      console.log(await rotateKey(pool, gateId, grace))
      return EXIT.ok
    })(),
  )
gates
  .command('revoke <gateId>')
  .description('revoke every key of a gate now')
  .action((gateId: string) =>
    withPool(async (pool) => {
      console.log(`${await revokeGate(pool, gateId)} key(s) revoked`)
      return EXIT.ok
    })(),
  )
gates
  .command('list')
  .description('gates, active keys, last seen and clock skew')
  .action(
    withPool(async (pool) => {
      for (const g of await listGates(pool)) {
        console.log(
          `${g.id.padEnd(20)} keys ${g.activeKeys}  last seen ${g.lastSeenAt?.toISOString() ?? 'never'}  skew ${g.lastSkewMs ?? '-'} ms`,
        )
      }
      return EXIT.ok
    }),
  )

program
  .command('participants')
  .description('the roster')
  .command('import <file>')
  .description('load participants from CSV (token,participant_id,status,name,email) or JSON, idempotently')
  .option('--event <eventId>', "the participants' event (the gates of that event pull them)")
  .action((file: string, opts: { event?: string }) =>
    withPool(async (pool) => {
      const { entries, problems } = readRosterFile(file)
      if (problems.length > 0) {
        for (const p of problems.slice(0, 20)) console.error(`${file}:${p.line}: ${p.message}`)
        throw new GateError('E_INPUT', `${problems.length} bad line(s); nothing was imported`)
      }
      const r = await importParticipants(pool, entries, { eventId: opts.event })
      console.log(`${r.inserted} added, ${r.updated} changed, ${r.unchanged} unchanged`)
      return EXIT.ok
    })(),
  )

await program.parseAsync(process.argv)
