import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { GateError } from '../../shared/errors.js'
import { currentPolicy, putPolicy } from '../access/policies.js'
import { EXIT } from '../exit-codes.js'
import { withPool } from './run.js'

/** `gate-cloud policy set` and `show`: an event's access policy (zones, lanes, rules). */
export function addPolicyCommands(program: Command): void {
  const policy = program.command('policy').description("an event's access policy: zones, lanes and rules")
  policy
    .command('set <file>')
    .description('store a policy (JSON) as the next version of the event; the gates pull it with the roster')
    .requiredOption('--event <eventId>', 'the event')
    .action((file: string, opts: { event: string }) =>
      withPool(async (pool) => {
        let input: unknown
        try {
          input = JSON.parse(readFileSync(file, 'utf8'))
        } catch (err) {
          throw new GateError('E_INPUT', `cannot read the policy ${file}: ${(err as Error).message}`)
        }
        const stored = await putPolicy(pool, opts.event, input)
        console.log(
          `event ${opts.event}: access policy version ${stored.version} (${stored.zones.length} zones, ${stored.lanes.length} lanes, ${stored.rules.length} rules)`,
        )
        return EXIT.ok
      })(),
    )
  policy
    .command('show')
    .description('print the policy in force (JSON)')
    .requiredOption('--event <eventId>', 'the event')
    .action((opts: { event: string }) =>
      withPool(async (pool) => {
        const p = await currentPolicy(pool, opts.event)
        if (p === null) throw new GateError('E_NOT_FOUND', `event ${opts.event} has no access policy`)
        console.log(JSON.stringify(p, null, 2))
        return EXIT.ok
      })(),
    )
}
