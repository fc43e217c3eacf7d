import type { Checkin } from '../shared/checkin.js'
import type { AccessStep } from './access/access-step.js'
import type { PolicyStore } from './access/policy-store.js'
import type { BleSource } from './ble/source.js'
import type { PipelineCounters } from './metrics.js'
import type { Dedup } from './pipeline/dedup.js'
import type { Pipeline } from './pipeline/pipeline.js'
import type { Proximity } from './pipeline/proximity.js'
import type { Validator } from './pipeline/validator.js'
import type { Db } from './store/db.js'
import type { Outbox } from './store/outbox.js'
import type { RosterStore } from './store/roster-store.js'
import type { StoreThread } from './store/store-thread.js'
import type { OccupancySync } from './sync/occupancy-sync.js'
import type { RosterPuller } from './sync/roster-puller.js'
import type { Syncer } from './sync/syncer.js'

/**
 * The parts of a running agent as the composition root builds them: null until built, and some
 * again once stopped. The status, the control handlers and the reporter read them when asked, so
 * they see whatever is running at that moment.
 */
export interface AgentParts {
  db: Db | null
  storeThread: StoreThread | null
  outbox: Outbox | null
  roster: RosterStore | null
  validator: Validator | null
  proximity: Proximity | null
  dedup: Dedup | null
  policies: PolicyStore | null
  access: AccessStep | null
  pipeline: Pipeline | null
  decoderCounters: Record<string, number> | null
  source: BleSource | null
  syncer: Syncer | null
  puller: RosterPuller | null
  occupancy: OccupancySync | null
  reporter: RunningReporter | null
}

/** What the agent reads of the MQTT reporter (report/mqtt-reporter.ts): its state, and how to stop it. */
export interface RunningReporter {
  readonly state: string
  stop(): Promise<void>
}

/** No part built yet. */
export function noParts(): AgentParts {
  return {
    db: null,
    storeThread: null,
    outbox: null,
    roster: null,
    validator: null,
    proximity: null,
    dedup: null,
    policies: null,
    access: null,
    pipeline: null,
    decoderCounters: null,
    source: null,
    syncer: null,
    puller: null,
    occupancy: null,
    reporter: null,
  }
}

/** What this run of the agent is and what it did last, for the status. */
export interface RunFacts {
  readonly bootId: string
  readonly version: string
  readonly counters: PipelineCounters
  /** wall ms when the source started, null before */
  startedAt: number | null
  /** monotonic ms when the source started */
  startedMono: number
  /** the last decision emitted */
  lastDecision: Checkin | null
}
