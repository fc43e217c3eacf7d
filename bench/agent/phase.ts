/**
 * The child side of the agent benchmark: one phase in a process of its own, so each memory figure is
 * that phase's alone. Loads the agent and SQLite, never pg or Intl (see plain-format.ts).
 */
import { crowdAlone } from './crowd-alone.js'
import type { AgentBenchOptions } from './options.js'
import { rawInsertRate } from './raw-insert.js'
import { runAgent } from './run-agent.js'

/** What the baseline phase gives: raw insert rates, rows/s, three runs each. */
export interface BaselineResult {
  single: number[]
  thousand: number[]
}

/** Runs the phase `name` ('flat', 'paced', 'baseline' or 'crowd') with its files in `dir`. */
export async function phase(name: string, dir: string, o: AgentBenchOptions): Promise<unknown> {
  const load = { participants: o.participants, chunk: o.chunk, zones: o.zones, rules: o.rules }
  switch (name) {
    case 'flat':
      return runAgent(dir, { seconds: o.minutes * 60, ...load })
    case 'paced':
      return runAgent(dir, { seconds: o.minutes * 60, paced: o.paced, ...load })
    case 'baseline':
      return {
        single: [0, 1, 2].map(() => rawInsertRate(dir, 1, 2)),
        thousand: [0, 1, 2].map(() => rawInsertRate(dir, 1000, 2)),
      } satisfies BaselineResult
    case 'crowd':
      return crowdAlone(o.participants)
    default:
      throw new Error(`unknown phase ${name}`)
  }
}
