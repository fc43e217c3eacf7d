import type { Command } from 'commander'
import type { AgentStatus, SyncStatus } from '../../../shared/status.js'
import { EXIT } from '../../exit-codes.js'
import { offlineStatus } from '../../store/offline-status.js'
import { markRefusedPending } from '../../store/outbox-maintenance.js'
import { action, type CliContext } from '../context.js'

function render(status: SyncStatus, pending: number, inFlight: number): string {
  const lines = [
    `cloud            ${status.cloudUrl ?? 'not configured (cloud.url, GATE_KEY)'}`,
    `state            ${status.state}${status.consecutiveFailures ? ` (${status.consecutiveFailures} failures in a row)` : ''}`,
    `buffer           ${pending} pending, ${inFlight} in flight`,
    `last success     ${status.lastSuccessAt ?? 'never'}`,
    `last attempt     ${status.lastAttemptAt ?? 'never'}`,
  ]
  if (status.lastError) lines.push(`last error       ${status.lastError}`)
  if (status.nextAttemptInS !== null) lines.push(`next attempt in  ${status.nextAttemptInS} s`)
  if (status.drainYielding)
    lines.push('drain            one batch at a time: decisions are committing slowly (a contended disk)')
  if (status.storeThread?.state === 'running')
    lines.push('store thread     running: claims and WAL checkpoints off the event loop')
  if (status.storeThread?.state === 'failed')
    lines.push('store thread     FAILED: claims and checkpoints on the main thread (see the log)')
  lines.push(
    `since start      ${status.accepted} accepted, ${status.duplicates} duplicates, ${status.rejected} refused by the cloud (batch ${status.batchSize})`,
  )
  lines.push(
    `roster           cursor ${status.roster.cursor}, last pull ${status.roster.lastPullAt ?? 'never'}, ${status.roster.applied} changes applied${status.roster.lastError ? `, error: ${status.roster.lastError}` : ''}`,
  )
  return lines.join('\n')
}

async function sync(ctx: CliContext, now: boolean): Promise<number> {
  const client = await ctx.daemon()
  if (!client) {
    const db = ctx.openReadOnly()
    try {
      const offline = offlineStatus(db, ctx.config.gateId, Date.now())
      ctx.print({ daemon: 'down', lastSync: offline.lastSync, buffer: offline.buffer }, () =>
        [
          'daemon           DOWN (nothing is being sent)',
          `last success     ${offline.lastSync?.at ?? 'never'}`,
          `buffer           ${offline.buffer.pending} pending, ${offline.buffer.inFlight} in flight (returned to pending at the next start)`,
        ].join('\n'),
      )
      return EXIT.daemon
    } finally {
      db.close()
    }
  }
  try {
    const syncStatus = now
      ? ((await client.request('sync.now', {}, 60_000)) as SyncStatus)
      : ((await client.request('status')) as AgentStatus).sync
    const status = (await client.request('status')) as AgentStatus
    if (!syncStatus) return EXIT.failure
    ctx.print({ ...syncStatus, buffer: status.buffer }, () =>
      render(syncStatus, status.buffer.pending, status.buffer.inFlight),
    )
    return syncStatus.state === 'disabled' ||
      syncStatus.state === 'auth-failed' ||
      (now && syncStatus.lastError)
      ? EXIT.failure
      : EXIT.ok
  } finally {
    client.close()
  }
}

/** Add `gatectl sync` to the program. */
export function register(program: Command): void {
  const cmd = program
    .command('sync')
    .description('sync with the cloud: state, last success, errors (exit 1 when not syncing)')
  cmd
    .command('status', { isDefault: true })
    .description('show the sync state')
    .action(action((ctx) => sync(ctx, false)))
  cmd
    .command('now')
    .description('send pending check-ins and pull roster changes now, forgetting any back-off')
    .action(action((ctx) => sync(ctx, true)))
  cmd
    .command('resend-refused')
    .description('send the check-ins the cloud refused again (after the cause is fixed)')
    .action(action((ctx) => resendRefused(ctx)))
}

/** Through the daemon when it runs (it sends them at once); on the file when it does not (sent at its next start). */
async function resendRefused(ctx: CliContext): Promise<number> {
  const client = await ctx.daemon()
  let resent: number
  if (client) {
    try {
      resent = ((await client.request('sync.resendRefused')) as { resent: number }).resent
    } finally {
      client.close()
    }
  } else {
    // the file must exist (opening it read-only says so clearly); nothing is created here
    ctx.openReadOnly().close()
    const db = ctx.openWritable()
    try {
      resent = markRefusedPending(db)
    } finally {
      db.close()
    }
  }
  ctx.print({ resent, daemon: client ? 'up' : 'down' }, () =>
    resent === 0
      ? 'no check-in refused by the cloud'
      : `${resent} check-in(s) refused by the cloud are pending again${client ? ': sending now' : '; the agent sends them when it starts'}`,
  )
  return EXIT.ok
}
