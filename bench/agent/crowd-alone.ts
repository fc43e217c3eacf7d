import { Crowd } from '../../agent/ble/sim/crowd.js'
import { agentConfigSchema } from '../../agent/config/schema.js'
import { benchSim } from './run-agent.js'

/** What the simulated crowd holds on its own. */
export interface CrowdAlone {
  devices: number
  /** live heap and buffers it holds after a full collection, bytes */
  live: number
  /** what it added to the resident memory of a process of its own, bytes */
  rss: number
}

/**
 * The benchmark's simulated crowd alone, in a process of its own (run with --expose-gc): the
 * agent's phases run the crowd in their own process, so their memory figures hold it too, and
 * this says how much of them is the benchmark's rather than the gate's.
 */
export function crowdAlone(participants: number): CrowdAlone {
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})
  gc()
  const before = process.memoryUsage()
  const config = agentConfigSchema.parse({ source: { kind: 'sim', sim: benchSim(participants) } })
  const crowd = new Crowd(config.source.sim, config.decoders)
  // its first ten seconds, as a phase starts
  crowd.advance(10_000, () => {})
  gc()
  const after = process.memoryUsage()
  return {
    devices: crowd.devices,
    live: after.heapUsed - before.heapUsed + (after.external - before.external),
    rss: after.rss - before.rss,
  }
}
