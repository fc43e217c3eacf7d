import type { Command } from 'commander'
import { GateError } from '../../../shared/errors.js'
import { readRosterFile } from '../../../shared/roster-file.js'
import { systemClock } from '../../clock.js'
import { EXIT } from '../../exit-codes.js'
import { lookupToken, type TokenReport } from '../../store/roster-lookup.js'
import { RosterStore } from '../../store/roster-store.js'
import { action, type CliContext } from '../context.js'
import { printable } from '../safe-text.js'

function renderReport(report: TokenReport): string {
  const lines = [`token ${printable(report.token)}`]
  lines.push(
    report.roster
      ? `  roster:   ${printable(report.roster.participantId)}${report.roster.name ? ` (${printable(report.roster.name)})` : ''}, ${report.roster.status}, updated ${report.roster.updatedAt} (roster version ${report.roster.version} of ${report.rosterVersion})`
      : `  roster:   NOT IN ROSTER (roster version ${report.rosterVersion})`,
  )
  lines.push(
    `  now:      would be ${report.wouldBe.decision.toUpperCase()}${report.wouldBe.reason ? ` (${report.wouldBe.reason})` : ''}: ${report.wouldBe.explanation}`,
  )
  if (report.present !== null)
    lines.push(
      `  at gate:  ${report.present ? 'yes' : 'no'}${report.smoothedRssi !== null ? `, smoothed RSSI ${report.smoothedRssi.toFixed(1)} dBm` : ''}`,
    )
  if (report.lastDecisions.length > 0) {
    lines.push('  recent decisions:')
    for (const decision of report.lastDecisions)
      lines.push(
        `    ${decision.at}  ${decision.decision}${decision.reason ? ` (${decision.reason})` : ''}  rssi ${decision.rssi}`,
      )
  }
  return lines.join('\n')
}

async function lookup(ctx: CliContext, token: string): Promise<number> {
  const wanted = token.trim().toLowerCase()
  if (!/^[0-9a-f]{4,48}$/.test(wanted))
    throw new GateError('E_INPUT', `"${token}" is not a token (4..48 hex characters)`)
  const client = await ctx.daemon()
  let report: TokenReport
  if (client) {
    try {
      report = (await client.request('roster.lookup', { token: wanted })) as TokenReport
    } finally {
      client.close()
    }
  } else {
    const db = ctx.openReadOnly()
    try {
      report = lookupToken(db, wanted, { windowMs: ctx.config.dedup.windowMs, now: Date.now() })
    } finally {
      db.close()
    }
  }
  ctx.print(report, () => renderReport(report))
  return report.roster ? EXIT.ok : EXIT.notFound
}

async function importFile(
  ctx: CliContext,
  file: string,
  options: { replace?: boolean; skipInvalid?: boolean },
): Promise<number> {
  const { entries, problems } = readRosterFile(file)
  if (problems.length > 0 && !options.skipInvalid) {
    const shown = problems.slice(0, 20).map((p) => `  line ${p.line}: ${p.message}`)
    if (problems.length > 20) shown.push(`  ... and ${problems.length - 20} more`)
    throw new GateError(
      'E_ROSTER_FILE',
      `${file}: ${problems.length} bad line(s); nothing imported (use --skip-invalid to import the rest):\n${shown.join('\n')}`,
    )
  }
  const db = ctx.openWritable()
  let result: ReturnType<RosterStore['importEntries']>
  try {
    result = new RosterStore(db, systemClock).importEntries(entries, { replace: options.replace === true })
  } finally {
    db.close()
  }
  const client = await ctx.daemon()
  if (client) {
    try {
      await client.request('roster.invalidate')
    } finally {
      client.close()
    }
  }
  const out = { file, ...result, skipped: problems.length, daemonNotified: client !== null }
  ctx.print(
    out,
    () =>
      `imported ${file}: ${result.inserted} new, ${result.updated} updated, ${result.unchanged} unchanged, ${result.removed} removed, ` +
      `${problems.length} skipped; roster version ${result.version}${client ? ' (the running agent reloaded it)' : ''}`,
  )
  return EXIT.ok
}

/** Add `gatectl roster` to the program. */
export function register(program: Command): void {
  const cmd = program.command('roster').description("the gate's roster of tokens")
  cmd
    .command('lookup <token>')
    .description('why would this badge be admitted or denied? (exit 0: in roster, 6: not in roster)')
    .action(action(lookup))
  cmd
    .command('import <file>')
    .description('load a roster file (CSV with header token,participant_id,status,name,email; or JSON array)')
    .option('--replace', 'the file is the whole roster: tokens not in it are removed')
    .option('--skip-invalid', 'import the good lines even if some are bad')
    .action(action(importFile))
}
