import type { Command } from 'commander'
import type { AgentStatus } from '../../../shared/status.js'
import { EXIT } from '../../exit-codes.js'
import { describeScheduling } from '../../lifecycle/scheduling.js'
import { offlineStatus } from '../../store/offline-status.js'
import { action, type CliContext } from '../context.js'
import { printable } from '../safe-text.js'

function age(seconds: number | null): string {
  if (seconds === null) return '-'
  if (seconds < 120) return `${seconds} s`
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`
  return `${(seconds / 3600).toFixed(1)} h`
}

/** The access rules' denials, when there are any: ", outside_time_window 3, anti_passback 1". */
function ruleDenials(denied: Record<string, number>): string {
  const roster = new Set(['unknown', 'revoked', 'inactive', 'already_checked_in'])
  return Object.entries(denied)
    .filter(([reason, n]) => !roster.has(reason) && n > 0)
    .map(([reason, n]) => `, ${reason} ${n}`)
    .join('')
}

/** Human rendering of a status snapshot. */
export function renderStatus(status: AgentStatus): string {
  const lines: string[] = []
  const row = (k: string, v: string) => lines.push(`${k.padEnd(16)} ${v}`)
  row('gate', `${status.gateId}  (agent ${status.version})`)
  row(
    'daemon',
    status.daemon === 'running'
      ? `running, up ${age(status.uptimeS)}`
      : 'DOWN (figures below are from the database file)',
  )
  if (status.source) {
    row(
      'source',
      `${status.source.kind}, adapter ${status.source.adapterState}, radio ${status.source.radio}`,
    )
    row(
      'scan',
      `${status.source.scanning ? 'on' : 'off'}, restarts ${status.source.scanRestarts}, last advert ${status.source.lastAdvertAgeS ?? '-'} s ago`,
    )
    if (status.source.detail) row('', status.source.detail)
  }
  if (status.advertsPerS !== null) row('adverts/s', status.advertsPerS.toFixed(1))
  if (status.counters) {
    const denied = status.counters.deny
    row(
      'decisions',
      `admit ${status.counters.admit}, deny ${Object.values(denied).reduce((a, b) => a + b, 0)} ` +
        `(unknown ${denied['unknown']}, revoked ${denied['revoked']}, inactive ${denied['inactive']}, already in ${denied['already_checked_in']}${ruleDenials(denied)})`,
    )
    row(
      'pipeline',
      `adverts ${status.counters.adverts}, sightings ${status.counters.sightings}, arrivals ${status.counters.arrivals}, suppressed ${status.counters.suppressed}${status.counters.withheld ? `, WITHHELD ${status.counters.withheld}` : ''}`,
    )
  }
  if (status.decoders)
    row(
      'decoders',
      Object.entries(status.decoders)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    )
  if (status.l1)
    row(
      'L1 cache',
      `hit rate ${status.l1.hitRate === null ? '-' : `${(status.l1.hitRate * 100).toFixed(1)} %`}, ${status.l1.entries} entries`,
    )
  row(
    'buffer',
    `pending ${status.buffer.pending}, in flight ${status.buffer.inFlight}, synced ${status.buffer.synced}, oldest pending ${age(status.buffer.oldestPendingAgeS)}`,
  )
  if (status.writes?.failing)
    row(
      'DISK FAILING',
      `the last commit failed: ${status.writes.waiting ?? 0} decisions waiting, none emitted until the disk writes again (${status.writes.expired ?? 0} dropped after waiting too long)`,
    )
  if (status.writes)
    row(
      'disk writes',
      `${status.writes.commits} commits, ${status.writes.rowsWritten} rows, ${status.writes.ioWriteBytes === null ? '-' : `${(status.writes.ioWriteBytes / 1e6).toFixed(1)} MB`} written${status.writes.commitErrors ? `, ${status.writes.commitErrors} COMMIT ERRORS` : ''}`,
    )
  row(
    'roster',
    `version ${status.roster.version}: ${status.roster.active} active, ${status.roster.revoked} revoked, ${status.roster.inactive} inactive`,
  )
  if (status.access) {
    const a = status.access
    const lane = a.lane
      ? `${printable(a.lane.from ?? 'outside')} -> ${printable(a.lane.to ?? 'outside')}`
      : 'NONE: this gate denies every entry'
    row('access', `policy version ${a.policyVersion}, lane ${lane}`)
    for (const z of a.zones)
      row(
        '',
        `${printable(z.zone)}: ${z.entries} in, ${z.exits} out${z.allotment === null ? '' : `, allotment ${z.allotment} (${Math.max(0, z.allotment - z.entries)} left)`}${z.period ? ` since the checkout of ${z.period}` : ''}`,
      )
  }
  row(
    'last sync',
    status.lastSync
      ? `${status.lastSync.at} (${status.lastSync.ok ? 'ok' : 'failed'})`
      : 'never (cloud sync not configured)',
  )
  row('mqtt', status.mqtt.state)
  if (status.scheduling) row('event loop', describeScheduling(status.scheduling))
  if (status.lastDecision)
    row(
      'last decision',
      `${status.lastDecision.decision}${status.lastDecision.reason ? ` (${status.lastDecision.reason})` : ''} ${printable(status.lastDecision.token)} at ${new Date(status.lastDecision.ts).toISOString()}`,
    )
  return lines.join('\n')
}

async function status(ctx: CliContext): Promise<number> {
  const client = await ctx.daemon()
  if (client) {
    try {
      const running = (await client.request('status')) as AgentStatus
      ctx.print(running, () => renderStatus(running))
      return EXIT.ok
    } finally {
      client.close()
    }
  }
  const db = ctx.openReadOnly()
  try {
    const offline = offlineStatus(db, ctx.config.gateId, Date.now())
    ctx.print(offline, () => renderStatus(offline))
    return EXIT.daemon
  } finally {
    db.close()
  }
}

/** Add `gatectl status` to the program. */
export function register(program: Command): void {
  program
    .command('status')
    .description('everything at a glance (exit 0: daemon running, 5: daemon down, figures from the database)')
    .action(action(status))
}
