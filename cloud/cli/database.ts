import type { Command } from 'commander'
import { migrateUp } from '../db/migrate.js'
import { EXIT } from '../exit-codes.js'
import { analyzeQueries, maintainTables } from '../ops/analyze.js'
import { withClient } from './run.js'

/** `gate-cloud migrate`, `analyze` and `maintain`: the schema, the critical queries' plans, VACUUM. */
export function addDatabaseCommands(program: Command): void {
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
}
