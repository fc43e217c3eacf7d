import type { Command } from 'commander'
import { GateError } from '../../../shared/errors.js'
import { type Inspection, inspectHex } from '../../decode/inspect.js'
import { EXIT } from '../../exit-codes.js'
import { action, type CliContext } from '../context.js'

interface DecodeOptions {
  ad?: boolean
  manufacturer?: boolean
}

function render(inspection: Inspection): string {
  const out: string[] = []
  out.push(
    inspection.input === 'ad'
      ? 'advertising data (AD structures):'
      : 'manufacturer-specific data (company id first, little-endian):',
  )
  for (const structure of inspection.structures) out.push(`  ${structure.type.padEnd(32)} ${structure.hex}`)
  for (const problem of inspection.problems) out.push(`  problem: ${problem}`)
  out.push('decoders:')
  for (const decoder of inspection.decoders) {
    const fields = Object.entries(decoder.fields)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')
    const token = decoder.token ? ` token ${decoder.token}` : ''
    out.push(
      `  ${decoder.decoder.padEnd(13)} ${decoder.outcome.padEnd(9)}${token}  ${decoder.note}${fields ? `  [${fields}]` : ''}`,
    )
  }
  out.push(`=> ${inspection.verdict}`)
  return out.join('\n')
}

async function decode(ctx: CliContext, hex: string[], opts: DecodeOptions): Promise<number> {
  if (opts.ad && opts.manufacturer)
    throw new GateError('E_INPUT', 'give at most one of --ad and --manufacturer')
  const kind = opts.ad ? 'ad' : opts.manufacturer ? 'manufacturer' : 'auto'
  const inspection = inspectHex(hex.join(' '), ctx.config.decoders, { kind })
  ctx.print(inspection, () => render(inspection))
  return inspection.token === null ? EXIT.notFound : EXIT.ok
}

/** Add `gatectl decode` to the program. */
export function register(program: Command): void {
  program
    .command('decode')
    .description(
      "show what each decoder makes of raw advertising data or manufacturer data, with this gate's decoder settings " +
        '(exit 0 when it yields a token, 6 when the advert would be dropped)',
    )
    .argument('<hex...>', 'bytes as hex; spaces and colons allowed (paste from btmon or nRF Connect)')
    .option('--ad', 'the bytes are AD structures (length, type, data ...)')
    .option('--manufacturer', 'the bytes are manufacturer data alone (company id first)')
    .action(action(decode))
}
