import type { Command } from 'commander'
import { GateError } from '../../shared/errors.js'
import { readRosterFile } from '../../shared/roster-file.js'
import { EXIT } from '../exit-codes.js'
import { importParticipants } from '../participants/import.js'
import { withPool } from './run.js'

/** `gate-cloud participants import`: the roster from a CSV or JSON file. */
export function addParticipantsCommands(program: Command): void {
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
}
