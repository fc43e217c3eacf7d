import { parseArgs } from 'node:util'

/** The agent benchmark's command line, parsed. */
export interface AgentBenchOptions {
  minutes: number
  participants: number
  chunk: number
  /** adverts/s of the steady venue load */
  paced: number
  /** an access policy of this many zones (0: none, the roster alone decides) */
  zones: number
  /** and this many rules */
  rules: number
}

/** The command line: the options, and the phase this process is to run (internal, with its directory). */
export function parseOptions(): { options: AgentBenchOptions; phase?: string; dir?: string } {
  const { values: args } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      participants: { type: 'string', default: '5000' },
      chunk: { type: 'string', default: '256' },
      paced: { type: 'string', default: '2000' },
      zones: { type: 'string', default: '0' },
      rules: { type: 'string', default: '0' },
      /** internal: run one phase in this process and print its result as JSON */
      phase: { type: 'string' },
      dir: { type: 'string' },
    },
  })
  const options: AgentBenchOptions = {
    minutes: Number(args.minutes),
    participants: Number(args.participants),
    chunk: Number(args.chunk),
    paced: Number(args.paced),
    zones: Number(args.zones),
    rules: Number(args.rules),
  }
  const policyOk =
    Number.isInteger(options.zones) &&
    Number.isInteger(options.rules) &&
    options.zones >= 0 &&
    options.rules >= 0 &&
    (options.zones === 0) === (options.rules === 0)
  if (
    !(options.minutes > 0 && options.participants > 0 && options.chunk > 0 && options.paced > 0 && policyOk)
  ) {
    console.error(
      'usage: npm run bench:agent -- [--minutes N] [--participants N] [--chunk N] [--paced adverts/s] [--zones N --rules N]',
    )
    process.exit(2)
  }
  return {
    options,
    ...(args.phase !== undefined ? { phase: args.phase } : {}),
    ...(args.dir !== undefined ? { dir: args.dir } : {}),
  }
}

/** The command line that gives a phase's process the same options (the reverse of parseOptions). */
export function optionArgs(o: AgentBenchOptions): string[] {
  return [
    '--minutes',
    String(o.minutes),
    '--participants',
    String(o.participants),
    '--chunk',
    String(o.chunk),
    '--paced',
    String(o.paced),
    '--zones',
    String(o.zones),
    '--rules',
    String(o.rules),
  ]
}
