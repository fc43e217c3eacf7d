import type { Command } from 'commander'
import { EXIT } from '../exit-codes.js'
import { listPartitions } from '../partitions/manager.js'
import { maintainAllPartitions } from '../partitions/policies.js'
import { withClient } from './run.js'

/** `gate-cloud partitions list` and `maintain`. */
export function addPartitionsCommands(program: Command): void {
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
        return r.attendance_records.conflicts.length || r.gate_metrics.conflicts.length
          ? EXIT.failure
          : EXIT.ok
      }),
    )
}
