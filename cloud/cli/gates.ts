import type { Command } from 'commander'
import { GateError } from '../../shared/errors.js'
import { EXIT } from '../exit-codes.js'
import { addGate, listGates, revokeGate, rotateKey } from '../gates/store.js'
import { withPool } from './run.js'

/** `gate-cloud gates add`, `rotate`, `revoke` and `list`: the gates and their keys. */
export function addGatesCommands(program: Command): void {
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
}
