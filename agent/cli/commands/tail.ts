import type { Command } from 'commander'
import type { DecisionEvent, SightingEvent } from '../../../shared/control.js'
import { GateError } from '../../../shared/errors.js'
import { EXIT } from '../../exit-codes.js'
import { listCheckins } from '../../store/outbox-queries.js'
import { action, type CliContext, MAX_DURATION_S, positiveOption } from '../context.js'
import { printable, safeJson, terminalSafe } from '../safe-text.js'

interface TailOptions {
  sightings?: boolean
  lines?: string
  count?: string
  timeout?: string
}

/** decisions shown from the file before following, as `tail` shows 10 lines */
const DEFAULT_LINES = 10

function line(stream: string, data: unknown): string {
  if (stream === 'decisions') {
    const decision = data as DecisionEvent
    const time = new Date(decision.ts).toISOString().slice(11, 23)
    const verdict = decision.decision === 'admit' ? 'ADMIT' : `DENY ${decision.reason}`
    // (a decision read back from the file has no latency to show)
    const latency = Number.isFinite(decision.latencyMs) ? `${decision.latencyMs.toFixed(2)} ms` : '-'
    const base = `${time}  ${verdict.padEnd(24)} token ${printable(decision.token)}  ${printable(decision.participantId ?? '-')}  rssi ${decision.rssi}  ${latency}`
    const byHand = decision.actor
      ? `  BY HAND ${printable(decision.actor)}: ${printable(decision.note ?? '')}`
      : ''
    const annuls = decision.annuls ? `  annuls ${decision.annuls}` : ''
    return base + accessText(decision) + byHand + annuls
  }
  const sighting = data as SightingEvent
  return `           sighting ${printable(sighting.token)} rssi ${sighting.rssi} smoothed ${sighting.smoothed?.toFixed(1) ?? '-'} ${sighting.present ? 'AT GATE' : ''} (${sighting.decoder} ${sighting.address})`
}

/** What the access rules said, on the same line: the zone entered or the rule and why it denied. */
function accessText(decision: DecisionEvent): string {
  const a = decision.access
  if (!a) return ''
  if (decision.decision === 'deny')
    return `  [${printable(a.ruleId ?? 'no rule')}] ${printable(a.explanation ?? '')}`
  const move = [a.zoneOut && `from ${printable(a.zoneOut)}`, a.zoneIn && `into ${printable(a.zoneIn)}`]
    .filter(Boolean)
    .join(' ')
  const warned = a.warnings.length > 0 ? `  WARNING ${a.warnings.map(printable).join('; ')}` : ''
  return `  ${move}${a.ruleId ? ` [${printable(a.ruleId)}]` : ''}${warned}`
}

/**
 * The last `n` decisions in the gate's file, oldest first, as the live stream shows them (what the
 * access rules said comes from the record; a decision's latency is not kept).
 */
function lastDecisions(ctx: CliContext, n: number): DecisionEvent[] {
  if (n === 0) return []
  const db = ctx.openReadOnly()
  try {
    return listCheckins(db, { limit: n })
      .reverse()
      .map(({ state: _state, syncError: _error, ...row }) => {
        const access =
          row.zoneIn || row.zoneOut || row.ruleId || row.explanation
            ? {
                zoneIn: row.zoneIn ?? null,
                zoneOut: row.zoneOut ?? null,
                ruleId: row.ruleId ?? null,
                explanation: row.explanation ?? null,
                warnings: [],
                policyVersion: row.policyVersion ?? 0,
              }
            : undefined
        return { ...row, latencyMs: Number.NaN, ...(access ? { access } : {}) } as DecisionEvent
      })
  } finally {
    db.close()
  }
}

async function tail(ctx: CliContext, opts: TailOptions): Promise<number> {
  const lines =
    opts.lines === '0'
      ? 0
      : (positiveOption('-n', opts.lines, { integer: true, max: 10_000 }) ?? DEFAULT_LINES)
  const max = positiveOption('--count', opts.count, { integer: true }) ?? Number.POSITIVE_INFINITY
  const timeoutS = positiveOption('--timeout', opts.timeout, { max: MAX_DURATION_S })
  const client = await ctx.daemon()
  if (!client)
    throw new GateError(
      'E_CONTROL_UNAVAILABLE',
      'the agent is not running; `gatectl checkins` shows what it buffered',
    )
  for (const d of lastDecisions(ctx, lines))
    process.stdout.write(
      ctx.json ? `${safeJson({ stream: 'decisions', ...d })}\n` : `${terminalSafe(line('decisions', d))}\n`,
    )
  let seen = 0
  return new Promise<number>((resolve) => {
    const finish = (code: number) => {
      client.close()
      resolve(code)
    }
    client.onClose = () => finish(EXIT.daemon)
    if (timeoutS !== undefined) setTimeout(() => finish(EXIT.ok), timeoutS * 1000).unref()
    process.once('SIGINT', () => finish(EXIT.ok))
    const streams: Array<'decisions' | 'sightings'> = opts.sightings
      ? ['decisions', 'sightings']
      : ['decisions']
    void client
      .subscribe(streams, (stream, data) => {
        process.stdout.write(
          ctx.json
            ? `${safeJson({ stream, ...(data as object) })}\n`
            : `${terminalSafe(line(stream, data))}\n`,
        )
        if (stream === 'decisions' && ++seen >= max) finish(EXIT.ok)
      })
      .catch(() => finish(EXIT.daemon))
  })
}

/** Add `gatectl tail` to the program. */
export function register(program: Command): void {
  program
    .command('tail')
    .description('the last decisions, then live ones from the running agent (and sightings with --sightings)')
    .option('--sightings', 'also show every token heard, with its smoothed RSSI')
    .option('-n, --lines <n>', `show the last n decisions first (default ${DEFAULT_LINES}; 0: none)`)
    .option('--count <n>', 'exit after n new decisions')
    .option('--timeout <s>', 'exit after s seconds')
    .action(action(tail))
}
