import { randomBytes } from 'node:crypto'
import os from 'node:os'
import type { Command } from 'commander'
import { GateError } from '../../shared/errors.js'
import { ROLES } from '../accounts/principal.js'
import { createAccount, disableAccount, listAccounts, NewAccount } from '../accounts/store.js'
import { appendAudit } from '../audit/trail.js'
import { EXIT } from '../exit-codes.js'
import { parseInput } from '../http/input.js'
import { withPool } from './run.js'

/** Who acts from this machine, as the audit trail names them (the database's access is theirs). */
const cliActor = () => `cli:${os.userInfo().username}@${os.hostname()}`

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '')
}

/**
 * `gate-cloud accounts add`, `list` and `disable`: people's accounts, from a machine that reaches
 * the database (the other way to make the first one is the ops token, over the API). Kept in the
 * audit trail like the API's actions.
 */
export function addAccountsCommands(program: Command): void {
  const accounts = program.command('accounts').description("people's accounts: log-ins with a role")
  accounts
    .command('add <login>')
    .description('make an account; prints a new random password once, unless --password-stdin')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
    .option('--name <name>', 'the name shown for them (default: the login)')
    .option('--event <eventId...>', 'the events an organiser runs')
    .option('--password-stdin', 'read the password from standard input instead')
    .action(
      (login: string, opts: { role: string; name?: string; event?: string[]; passwordStdin?: boolean }) =>
        withPool(async (pool) => {
          const generated = opts.passwordStdin ? null : randomBytes(18).toString('base64url')
          const password = generated ?? (await readStdin())
          const input = parseInput(NewAccount, {
            login,
            displayName: opts.name ?? login,
            role: opts.role,
            password,
            events: opts.event ?? [],
          })
          const account = await createAccount(pool, input, cliActor())
          await appendAudit(pool, {
            actor: cliActor(),
            accountId: null,
            role: 'cli',
            action: 'account.create',
            target: account.login,
            eventId: null,
            sourceIp: null,
            outcome: 'done',
            detail: { role: account.role, events: account.events },
          })
          if (generated) console.log(generated)
          console.error(
            `account ${account.login} (${account.role}${account.events.length ? ` of ${account.events.join(', ')}` : ''}) made.` +
              (generated ? ' Its password is above: hand it over safely; it is not shown again.' : ''),
          )
          return EXIT.ok
        })(),
    )
  accounts
    .command('list')
    .description('accounts: login, role, events, disabled or not')
    .action(
      withPool(async (pool) => {
        for (const a of await listAccounts(pool))
          console.log(
            `${a.login.padEnd(24)} ${a.role.padEnd(11)} ${(a.events.join(',') || '-').padEnd(24)} ${a.disabledAt ? `disabled ${a.disabledAt}` : 'active'}`,
          )
        return EXIT.ok
      }),
    )
  accounts
    .command('disable <login>')
    .description('disable an account: it cannot log in, and its sessions and tokens end now')
    .action((login: string) =>
      withPool(async (pool) => {
        const found = (await listAccounts(pool)).find((a) => a.login === login.toLowerCase())
        if (!found) throw new GateError('E_NOT_FOUND', `no account ${login}`)
        await disableAccount(pool, found.id)
        await appendAudit(pool, {
          actor: cliActor(),
          accountId: null,
          role: 'cli',
          action: 'account.disable',
          target: found.login,
          eventId: null,
          sourceIp: null,
          outcome: 'done',
        })
        console.log(`account ${found.login} disabled`)
        return EXIT.ok
      })(),
    )
}
