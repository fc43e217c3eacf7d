import type { Command } from 'commander'
import { GateError } from '../../../shared/errors.js'
import { readRosterFile } from '../../../shared/roster-file.js'
import { systemClock } from '../../clock.js'
import { EXIT } from '../../exit-codes.js'
import { lookupToken, type TokenReport } from '../../store/roster-lookup.js'
import { RosterStore } from '../../store/roster-store.js'
import { action, type CliContext } from '../context.js'
import { printable } from '../safe-text.js'

function renderReport(r: TokenReport): string {
  const lines = [`token ${printable(r.token)}`]
  lines.push(
    r.roster
      ? `  roster:   ${printable(r.roster.participantId)}${r.roster.name ? ` (${printable(r.roster.name)})` : ''}, ${r.roster.status}, updated ${r.roster.updatedAt} (roster version ${r.roster.version} of ${r.rosterVersion})`
      : `  roster:   NOT IN ROSTER (roster version ${r.rosterVersion})`,
  )
  lines.push(
    `  now:      would be ${r.wouldBe.decision.toUpperCase()}${r.wouldBe.reason ? ` (${r.wouldBe.reason})` : ''}: ${r.wouldBe.explanation}`,
  )
  if (r.present !== null)
    lines.push(
      `  at gate:  ${r.present ? 'yes' : 'no'}${r.smoothedRssi !== null ? `, smoothed RSSI ${r.smoothedRssi.toFixed(1)} dBm` : ''}`,
    )
  if (r.lastDecisions.length > 0) {
    lines.push('  recent decisions:')
    for (const d of r.lastDecisions)
      lines.push(`    ${d.at}  ${d.decision}${d.reason ? ` (${d.reason})` : ''}  rssi ${d.rssi}`)
  }
  return lines.join('\n')
}

async function lookup(ctx: CliContext, token: string): Promise<number> {
  const t = token.trim().toLowerCase()
  if (!/^[0-9a-f]{4,48}$/.test(t))
    throw new GateError('E_INPUT', `"${token}" is not a token (4..48 hex characters)`)
  const client = await ctx.daemon()
  let report: TokenReport
  if (client) {
    try {
      report = (await client.request('roster.lookup', { token: t })) as TokenReport
    } finally {
      client.close()
    }
  } else {
    const db = ctx.openReadOnly()
    try {
      report = lookupToken(db, t, { windowMs: ctx.config.dedup.windowMs, now: Date.now() })
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
  o: { replace?: boolean; skipInvalid?: boolean },
): Promise<number> {
  const { entries, problems } = readRosterFile(file)
  if (problems.length > 0 && !o.skipInvalid) {
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
    result = new RosterStore(db, systemClock).importEntries(entries, { replace: o.replace === true })
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
