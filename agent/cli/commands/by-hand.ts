import { userInfo } from 'node:os'
import type { Command } from 'commander'
import type { Checkin } from '../../../shared/checkin.js'
import { GateError } from '../../../shared/errors.js'
import { EXIT } from '../../exit-codes.js'
import { action, type CliContext } from '../context.js'
import { printable } from '../safe-text.js'

/**
 * Who is deciding: the login behind sudo when there is one (technicians run gatectl with sudo to
 * reach the agent's socket), else this process's user. Recorded with the decision, synced with it.
 */
function actor(): string {
  const sudo = process.env['SUDO_USER']
  if (sudo && sudo.length > 0) return sudo.slice(0, 64)
  try {
    return userInfo().username.slice(0, 64) || `uid ${process.getuid?.() ?? '?'}`
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`
  }
}

async function byHand(
  ctx: CliContext,
  decision: 'admit' | 'deny' | 'checkout',
  token: string,
  opts: { reason?: string },
): Promise<number> {
  const note = opts.reason?.trim() ?? ''
  if (note.length === 0) throw new GateError('E_INPUT', `say why: gatectl ${decision} TOKEN --reason "..."`)
  const out = decision === 'checkout'
  const client = await ctx.daemon()
  if (!client)
    throw new GateError(
      'E_CONTROL_UNAVAILABLE',
      'the agent is not running: a decision by hand is made by the running agent (it opens the gate and records it)',
    )
  try {
    const checkin = (await client.request('checkin.byHand', {
      token,
      decision: out ? 'admit' : decision,
      actor: actor(),
      note,
      direction: out ? 'out' : 'in',
    })) as Checkin
    ctx.print(checkin, () =>
      [
        `${out ? 'CHECKED OUT' : decision === 'admit' ? 'ADMITTED' : 'DENIED'} by hand: token ${printable(checkin.token)}  ${printable(checkin.participantId ?? '-')}`,
        `recorded as ${checkin.id} by ${printable(checkin.actor ?? '?')}: ${printable(checkin.note ?? '')}`,
        out && checkin.zoneOut ? `out of zone ${printable(checkin.zoneOut)}` : '',
        !out && checkin.zoneIn ? `into zone ${printable(checkin.zoneIn)}` : '',
      ]
        .filter(Boolean)
        .join('\n'),
    )
    return EXIT.ok
  } finally {
    client.close()
  }
}

/** Add `gatectl admit`, `gatectl deny` and `gatectl checkout` to the program. */
export function register(program: Command): void {
  program
    .command('admit')
    .description('admit a participant by hand (opens the gate; recorded with who and why, and synced)')
    .argument('<token>', "the participant's badge token")
    .requiredOption('--reason <text>', 'why (recorded with the decision)')
    .action(action((ctx, token: string, opts: { reason?: string }) => byHand(ctx, 'admit', token, opts)))
  program
    .command('deny')
    .description(
      'deny a badge by hand (recorded with who and why, and synced; it stays denied for the re-entry window)',
    )
    .argument('<token>', 'the badge token')
    .requiredOption('--reason <text>', 'why (recorded with the decision)')
    .action(action((ctx, token: string, opts: { reason?: string }) => byHand(ctx, 'deny', token, opts)))
  program
    .command('checkout')
    .description(
      "check a participant out by hand: they left this gate's zone without passing a gate (its occupancy drops, they may come back in); opens nothing",
    )
    .argument('<token>', "the participant's badge token")
    .requiredOption('--reason <text>', 'why (recorded with the check-out)')
    .action(action((ctx, token: string, opts: { reason?: string }) => byHand(ctx, 'checkout', token, opts)))
}
