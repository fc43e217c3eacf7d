import type { Command } from 'commander'
import { GateError } from '../../../shared/errors.js'
import { type Inspection, inspectHex } from '../../decode/inspect.js'
import { EXIT } from '../../exit-codes.js'
import { action, type CliContext } from '../context.js'

interface DecodeOptions {
  ad?: boolean
  manufacturer?: boolean
}

function render(r: Inspection): string {
  const out: string[] = []
  out.push(
    r.input === 'ad'
      ? 'advertising data (AD structures):'
      : 'manufacturer-specific data (company id first, little-endian):',
  )
  for (const s of r.structures) out.push(`  ${s.type.padEnd(32)} ${s.hex}`)
  for (const p of r.problems) out.push(`  problem: ${p}`)
  out.push('decoders:')
  for (const d of r.decoders) {
    const fields = Object.entries(d.fields)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')
    const token = d.token ? ` token ${d.token}` : ''
    out.push(
      `  ${d.decoder.padEnd(13)} ${d.outcome.padEnd(9)}${token}  ${d.note}${fields ? `  [${fields}]` : ''}`,
    )
  }
  out.push(`=> ${r.verdict}`)
  return out.join('\n')
}

async function decode(ctx: CliContext, hex: string[], opts: DecodeOptions): Promise<number> {
  if (opts.ad && opts.manufacturer)
    throw new GateError('E_INPUT', 'give at most one of --ad and --manufacturer')
  const kind = opts.ad ? 'ad' : opts.manufacturer ? 'manufacturer' : 'auto'
  const r = inspectHex(hex.join(' '), ctx.config.decoders, { kind })
  ctx.print(r, () => render(r))
  return r.token === null ? EXIT.notFound : EXIT.ok
}

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
