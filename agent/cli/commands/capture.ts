import type { Command } from 'commander'
import { GateError } from '../../../shared/errors.js'
import { captureLineSchema, lineToAdvert } from '../../../shared/replay.js'
import { CaptureWriter } from '../../ble/capture.js'
import { EXIT } from '../../exit-codes.js'
import { action, type CliContext, MAX_DURATION_S, positiveOption } from '../context.js'
import { safeJson, terminalSafe } from '../safe-text.js'

interface CaptureOptions {
  output: string
  duration?: string
  count?: string
  overwrite?: boolean
}

/** Record what the running agent hears into a replay file (`gate-agent run --source replay --replay FILE` plays it). */
async function capture(ctx: CliContext, opts: CaptureOptions): Promise<number> {
  const durationS = positiveOption('--duration', opts.duration, { max: MAX_DURATION_S })
  const maxCount = positiveOption('--count', opts.count, { integer: true })
  const client = await ctx.daemon()
  if (!client)
    throw new GateError(
      'E_CONTROL_UNAVAILABLE',
      'the agent is not running: capture records what the live agent hears',
    )
  let source: string | undefined
  try {
    const status = (await client.request('status', {})) as { source?: { kind?: string } | null }
    source = status.source?.kind
  } catch {
    // the header's source is informative only
  }
  let writer: CaptureWriter
  try {
    writer = new CaptureWriter(
      opts.output,
      { gateId: ctx.config.gateId, source },
      { overwrite: opts.overwrite === true },
    )
  } catch (err) {
    client.close()
    throw err
  }
  let skipped = 0
  return new Promise<number>((resolve) => {
    let done = false
    const finish = (code: number) => {
      if (done) return
      done = true
      client.close()
      writer.close()
      const msg = `${writer.count} adverts written to ${opts.output}${skipped > 0 ? ` (${skipped} malformed skipped)` : ''}`
      if (ctx.json)
        process.stdout.write(`${safeJson({ file: opts.output, adverts: writer.count, skipped })}\n`)
      else process.stderr.write(`${terminalSafe(msg)}\n`)
      resolve(code)
    }
    client.onClose = () => finish(EXIT.daemon)
    if (durationS !== undefined) setTimeout(() => finish(EXIT.ok), durationS * 1000).unref()
    process.once('SIGINT', () => finish(EXIT.ok))
    process.once('SIGTERM', () => finish(EXIT.ok))
    void client
      .subscribe(['adverts'], (_stream, data) => {
        if (done) return
        const { ts, ...fields } = data as Record<string, unknown>
        const parsed = captureLineSchema.safeParse({ ...fields, t: 0 })
        if (!parsed.success || typeof ts !== 'number') {
          skipped++
          return
        }
        writer.write(lineToAdvert(parsed.data), ts)
        if (maxCount !== undefined && writer.count >= maxCount) finish(EXIT.ok)
      })
      .catch(() => finish(EXIT.daemon))
  })
}

/** Add `gatectl capture` to the program. */
export function register(program: Command): void {
  program
    .command('capture')
    .description(
      'record the adverts the running agent hears to a replay file (stop with Ctrl-C, --duration or --count)',
    )
    .requiredOption('-o, --output <file>', 'capture file to create (JSON lines; refuses to overwrite)')
    .option('--duration <s>', 'stop after s seconds')
    .option('--count <n>', 'stop after n adverts')
    .option('--overwrite', 'replace the file if it exists')
    .action(action(capture))
}
