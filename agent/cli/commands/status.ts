import type { Command } from 'commander'
import type { AgentStatus } from '../../../shared/status.js'
import { EXIT } from '../../exit-codes.js'
import { describeScheduling } from '../../lifecycle/scheduling.js'
import { offlineStatus } from '../../store/offline-status.js'
import { action, type CliContext } from '../context.js'
import { printable } from '../safe-text.js'

function age(s: number | null): string {
  if (s === null) return '-'
  if (s < 120) return `${s} s`
  if (s < 7200) return `${Math.round(s / 60)} min`
  return `${(s / 3600).toFixed(1)} h`
}

/** Human rendering of a status snapshot. */
export function renderStatus(s: AgentStatus): string {
  const lines: string[] = []
  const row = (k: string, v: string) => lines.push(`${k.padEnd(16)} ${v}`)
  row('gate', `${s.gateId}  (agent ${s.version})`)
  row(
    'daemon',
    s.daemon === 'running'
      ? `running, up ${age(s.uptimeS)}`
      : 'DOWN (figures below are from the database file)',
  )
  if (s.source) {
    row('source', `${s.source.kind}, adapter ${s.source.adapterState}, radio ${s.source.radio}`)
    row(
      'scan',
      `${s.source.scanning ? 'on' : 'off'}, restarts ${s.source.scanRestarts}, last advert ${s.source.lastAdvertAgeS ?? '-'} s ago`,
    )
    if (s.source.detail) row('', s.source.detail)
  }
  if (s.advertsPerS !== null) row('adverts/s', s.advertsPerS.toFixed(1))
  if (s.counters) {
    const d = s.counters.deny
    row(
      'decisions',
      `admit ${s.counters.admit}, deny ${Object.values(d).reduce((a, b) => a + b, 0)} ` +
        `(unknown ${d['unknown']}, revoked ${d['revoked']}, inactive ${d['inactive']}, already in ${d['already_checked_in']})`,
    )
    row(
      'pipeline',
      `adverts ${s.counters.adverts}, sightings ${s.counters.sightings}, arrivals ${s.counters.arrivals}, suppressed ${s.counters.suppressed}${s.counters.withheld ? `, WITHHELD ${s.counters.withheld}` : ''}`,
    )
  }
  if (s.decoders)
    row(
      'decoders',
      Object.entries(s.decoders)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    )
  if (s.l1)
    row(
      'L1 cache',
      `hit rate ${s.l1.hitRate === null ? '-' : `${(s.l1.hitRate * 100).toFixed(1)} %`}, ${s.l1.entries} entries`,
    )
  row(
    'buffer',
    `pending ${s.buffer.pending}, in flight ${s.buffer.inFlight}, synced ${s.buffer.synced}, oldest pending ${age(s.buffer.oldestPendingAgeS)}`,
  )
  if (s.writes?.failing)
    row(
      'DISK FAILING',
      `the last commit failed: ${s.writes.waiting ?? 0} decisions waiting, none emitted until the disk writes again (${s.writes.expired ?? 0} dropped after waiting too long)`,
    )
  if (s.writes)
    row(
      'disk writes',
      `${s.writes.commits} commits, ${s.writes.rowsWritten} rows, ${s.writes.ioWriteBytes === null ? '-' : `${(s.writes.ioWriteBytes / 1e6).toFixed(1)} MB`} written${s.writes.commitErrors ? `, ${s.writes.commitErrors} COMMIT ERRORS` : ''}`,
    )
  row(
    'roster',
    `version ${s.roster.version}: ${s.roster.active} active, ${s.roster.revoked} revoked, ${s.roster.inactive} inactive`,
  )
  row(
    'last sync',
    s.lastSync
      ? `${s.lastSync.at} (${s.lastSync.ok ? 'ok' : 'failed'})`
      : 'never (cloud sync not configured)',
  )
  row('mqtt', s.mqtt.state)
  if (s.scheduling) row('event loop', describeScheduling(s.scheduling))
  if (s.lastDecision)
    row(
      'last decision',
      `${s.lastDecision.decision}${s.lastDecision.reason ? ` (${s.lastDecision.reason})` : ''} ${printable(s.lastDecision.token)} at ${new Date(s.lastDecision.ts).toISOString()}`,
    )
  return lines.join('\n')
}

async function status(ctx: CliContext): Promise<number> {
  const client = await ctx.daemon()
  if (client) {
    try {
      const s = (await client.request('status')) as AgentStatus
      ctx.print(s, () => renderStatus(s))
      return EXIT.ok
    } finally {
      client.close()
    }
  }
  const db = ctx.openReadOnly()
  try {
    const s = offlineStatus(db, ctx.config.gateId, Date.now())
    ctx.print(s, () => renderStatus(s))
    return EXIT.daemon
  } finally {
    db.close()
  }
}

export function register(program: Command): void {
  program
    .command('status')
    .description('everything at a glance (exit 0: daemon running, 5: daemon down, figures from the database)')
    .action(action(status))
}
