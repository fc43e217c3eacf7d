import type { Command } from 'commander'
import type { DecisionEvent, SightingEvent } from '../../../shared/control.js'
import { GateError } from '../../../shared/errors.js'
import { EXIT } from '../../exit-codes.js'
import { action, type CliContext, MAX_DURATION_S, positiveOption } from '../context.js'
import { printable, safeJson, terminalSafe } from '../safe-text.js'

interface TailOptions {
  sightings?: boolean
  count?: string
  timeout?: string
}

function line(stream: string, data: unknown): string {
  if (stream === 'decisions') {
    const decision = data as DecisionEvent
    const time = new Date(decision.ts).toISOString().slice(11, 23)
    const verdict = decision.decision === 'admit' ? 'ADMIT' : `DENY ${decision.reason}`
    const base = `${time}  ${verdict.padEnd(24)} token ${printable(decision.token)}  ${printable(decision.participantId ?? '-')}  rssi ${decision.rssi}  ${decision.latencyMs.toFixed(2)} ms`
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

async function tail(ctx: CliContext, opts: TailOptions): Promise<number> {
  const max = positiveOption('--count', opts.count, { integer: true }) ?? Number.POSITIVE_INFINITY
  const timeoutS = positiveOption('--timeout', opts.timeout, { max: MAX_DURATION_S })
  const client = await ctx.daemon()
  if (!client)
    throw new GateError(
      'E_CONTROL_UNAVAILABLE',
      'the agent is not running; `gatectl checkins` shows what it buffered',
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
    .description('live decisions from the running agent (and sightings with --sightings)')
    .option('--sightings', 'also show every token heard, with its smoothed RSSI')
    .option('-n, --count <n>', 'exit after n decisions')
    .option('--timeout <s>', 'exit after s seconds')
    .action(action(tail))
}
