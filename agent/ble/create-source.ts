import type { Logger } from 'pino'
import type { RosterEntry } from '../../shared/roster.js'
import type { Clock } from '../clock.js'
import type { AgentConfig } from '../config/schema.js'
import { NobleSource } from './noble-source.js'
import { ReplaySource } from './replay-source.js'
import { demoRosterFor as simDemoRoster } from './sim/demo-roster.js'
import { SimSource } from './sim/sim-source.js'
import type { BleSource } from './source.js'

/** Build the BLE source the configuration names. Noble is only imported when it is the chosen one. */
export function createSource(config: AgentConfig, deps: { clock: Clock; log: Logger }): BleSource {
  switch (config.source.kind) {
    case 'noble':
      return new NobleSource(config.source.noble, {
        clock: deps.clock,
        log: deps.log.child({ component: 'noble' }),
      })
    case 'sim':
      return new SimSource(config.source.sim, config.decoders, { clock: deps.clock })
    case 'replay':
      return new ReplaySource(config.source.replay, { clock: deps.clock })
  }
}

/** The roster that goes with the simulated crowd (`gate-agent run --demo`): same seed, same tokens. */
export function demoRosterFor(config: AgentConfig): RosterEntry[] {
  return simDemoRoster(config)
}
