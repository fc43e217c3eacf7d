// The composition root: every part of the agent is built, started and stopped here and nowhere else.
// It is longer than the other files because it names every part and the order they start in; what
// the parts do, and what the status, the control socket and the reporter read from them, lives in
// their own modules (status.ts, control/handlers.ts, report/start-reporter.ts, store/prune-schedule.ts).
import path from 'node:path'
import type { Logger } from 'pino'
import { v4 as uuidv4 } from 'uuid'
import type { AgentStatus, SyncStatus } from '../shared/status.js'
import { productVersion } from '../shared/version.js'
import { AccessStep } from './access/access-step.js'
import { PolicyStore } from './access/policy-store.js'
import { Actuators } from './actuator/actuators.js'
import type { BleSource } from './ble/source.js'
import type { Clock, MachineMono } from './clock.js'
import type { AgentConfig } from './config/schema.js'
import { SOCKET_NAME } from './control/client.js'
import { controlHandlers, type HandlerSources, subscribeStream } from './control/handlers.js'
import { ControlServer, refuseIfAnotherDaemon } from './control/server.js'
import { createTokenDecoder } from './decode/token-decoder.js'
import { startHeapCompaction } from './lifecycle/heap.js'
import { newPipelineCounters, type PipelineCounters } from './metrics.js'
import { type AgentParts, noParts, type RunFacts } from './parts.js'
import { Dedup } from './pipeline/dedup.js'
import { Pipeline } from './pipeline/pipeline.js'
import { Proximity } from './pipeline/proximity.js'
import { Validator } from './pipeline/validator.js'
import { startMqttReporter } from './report/start-reporter.js'
import { agentStatus, syncStatus } from './status.js'
import { CLAIM_QUERIES } from './store/claims.js'
import { type Db, isSqliteError, mapSqliteError } from './store/db.js'
import { DB_NAME, openAgentDatabase } from './store/open-agent-db.js'
import { Outbox } from './store/outbox.js'
import { PruneSchedule } from './store/prune-schedule.js'
import { recentDecisions, recordRun } from './store/recent-decisions.js'
import { RosterStore } from './store/roster-store.js'
import { StoreThread } from './store/store-thread.js'
import { type CloudClient, cloudClientFor } from './sync/cloud-client.js'
import { OccupancySync } from './sync/occupancy-sync.js'
import { RosterPuller } from './sync/roster-puller.js'
import { Syncer } from './sync/syncer.js'

/** What the composition root is given from outside: the world the agent runs in. */
export interface AgentDeps {
  config: AgentConfig
  clock: Clock
  log: Logger
  /** builds the configured BLE source (noble, sim or replay) */
  makeSource: (config: AgentConfig) => BleSource
  /** runs before the source starts, with the open stores (the demo roster import) */
  beforeStart?: (stores: { roster: RosterStore; db: Db }) => void
  /** the cloud, when configured (tests may pass their own); default: HTTP to config.cloud.url */
  makeCloudClient?: (config: AgentConfig) => CloudClient | null
}

/**
 * After a slow decision commit, a backlog drain sends one batch at a time for this long, ms. A disk
 * that is contended stays so for a while (another writer, the cloud's ingest on a shared machine):
 * coming back to every lane after 2 s met the next slow commit within seconds (measured: a higher
 * decision p99 during a drain, for the same drain time; the figures are in docs/benchmarks.md).
 */
const DRAIN_YIELD_HOLD_MS = 10_000

/**
 * The gate agent: builds every component, starts them in order and stops them in reverse.
 * This is the only place that knows how the parts fit together.
 */
export class GateAgent {
  readonly bootId = uuidv4()
  readonly counters: PipelineCounters = newPipelineCounters()
  /** what start() built; the status, the control handlers and the reporter read it when asked */
  private readonly parts: AgentParts = noParts()
  private readonly run: RunFacts
  private control: ControlServer | null = null
  private actuators: Actuators | null = null
  private housekeeping: NodeJS.Timeout | null = null
  private pruneSchedule: PruneSchedule | null = null
  private stopHeapCompaction: () => void = () => {}
  /** The stop's step under way (null when not stopping): what a stop past its deadline names. */
  stopStep: string | null = null

  constructor(private readonly deps: AgentDeps) {
    this.run = {
      bootId: this.bootId,
      version: productVersion(),
      counters: this.counters,
      startedAt: null,
      startedMono: 0,
      lastDecision: null,
    }
  }

  /** Start everything; on failure, whatever was started is stopped again and the error rethrown. */
  async start(): Promise<void> {
    const { config, clock, log } = this.deps
    const { parts, run } = this
    const dbFile = path.join(config.dataDir, DB_NAME)
    try {
      await refuseIfAnotherDaemon(path.join(config.dataDir, SOCKET_NAME))
      const { db, roster, outbox, machine } = await this.openStore(dbFile)
      this.deps.beforeStart?.({ roster, db })
      const { pipeline, restored } = this.buildDecisionPath(db, roster, outbox, machine)

      const handlers = controlHandlers(this.handlerSources())
      this.control = new ControlServer(
        path.join(config.dataDir, SOCKET_NAME),
        handlers,
        (stream, send) => subscribeStream(parts, stream, send),
        log.child({ component: 'control' }),
      )
      await this.control.start()
      this.buildSync(db, roster, outbox)

      const source = this.deps.makeSource(config)
      parts.source = source
      const srcLog = log.child({ component: 'ble', source: source.kind })
      await source.start({
        advert: pipeline.handleAdvert,
        state: (s) => srcLog.debug({ state: s }, 'adapter state'),
        warn: (err) => srcLog.warn({ err: err.message, code: err.code }, 'source warning'),
        end: () => srcLog.info('source finished (end of capture)'),
      })
      run.startedAt = clock.now()
      run.startedMono = clock.mono()
      parts.syncer?.start()
      parts.puller?.start()
      parts.occupancy?.start()
      if (config.mqtt.url)
        parts.reporter = await startMqttReporter(config.mqtt.url, {
          from: this.handlerSources(),
          db,
          handlers,
        })
      this.pruneSchedule = new PruneSchedule(outbox, {
        clock,
        log,
        retentionDays: config.outbox.retentionDays,
        dedupWindowMs: config.dedup.windowMs,
      })
      this.housekeeping = setInterval(() => this.tick(), 1000)
      this.housekeeping.unref()
      this.stopHeapCompaction = startHeapCompaction(config.memory.majorGcEveryS * 1000, log)
      log.info(
        {
          gateId: config.gateId,
          version: run.version,
          bootId: this.bootId,
          source: source.kind,
          dataDir: config.dataDir,
          roster: roster.counts(),
          rosterVersion: roster.version(),
          dedupRestored: restored,
          pending: outbox.counts().pending,
        },
        'gate agent started',
      )
    } catch (err) {
      await this.stop()
      // a damaged page met after the check (its late verdict, a page in the WAL): still a clear exit 4
      throw isSqliteError(err) ? mapSqliteError(err, dbFile) : err
    }
  }

  /** The database (checked first), the store thread, this run's rows, the roster and the outbox. */
  private async openStore(dbFile: string) {
    const { config, clock, log } = this.deps
    const parts = this.parts
    // checked before anything is written to it: a damaged file is refused and left as it was
    const db = await openAgentDatabase(dbFile, log.child({ component: 'store' }))
    parts.db = db
    // a validated integer (config schema), not free text
    db.pragma(`cache_size = -${config.outbox.cacheKiB}`)
    // off the event loop: WAL checkpoints always with outbox.checkpoint 'worker', and while a backlog
    // drains (the outbox starts and stops it then) claims and checkpoints
    const storeThread = new StoreThread(db, dbFile, log.child({ component: 'store-thread' }), {
      queries: CLAIM_QUERIES,
    })
    parts.storeThread = storeThread
    if (config.outbox.checkpoint === 'worker') storeThread.start()
    db.prepare('INSERT INTO boots (boot_id, started_ms, version) VALUES (?, ?, ?)').run(
      this.bootId,
      clock.now(),
      this.run.version,
    )
    // the next start dates this run's decisions by the machine's clock, whatever the wall clock did
    const machine = clock.machine?.() ?? null
    if (machine) recordRun(db, this.bootId, machine)
    const roster = new RosterStore(db, clock)
    parts.roster = roster
    const outbox = new Outbox(db, {
      clock,
      log: log.child({ component: 'outbox' }),
      gateId: config.gateId,
      bootId: this.bootId,
      groupCommitDelayMs: config.outbox.groupCommitDelayMs,
      maxWaitMs: config.outbox.maxWaitMs,
      ...(config.cloud.drainYieldCommitMs > 0 ? { slowCommitMs: config.cloud.drainYieldCommitMs } : {}),
      thread: storeThread,
    })
    parts.outbox = outbox
    const recovered = outbox.recoverInFlight()
    if (recovered > 0)
      log.warn({ recovered }, 'in-flight check-ins returned to pending after an unclean stop')
    return { db, roster, outbox, machine }
  }

  /** From advert to decision: validator, proximity, dedup (rebuilt from the database), pipeline, actuators. */
  private buildDecisionPath(db: Db, roster: RosterStore, outbox: Outbox, machine: MachineMono | null) {
    const { config, clock, log } = this.deps
    const parts = this.parts
    const validator = new Validator(roster, {
      maxEntries: config.validation.l1MaxEntries,
      negativeTtlMs: config.validation.negativeTtlMs,
      clock,
    })
    const proximity = new Proximity(config.proximity)
    const dedup = new Dedup(config.dedup.windowMs)
    const policies = new PolicyStore(db, log.child({ component: 'access' }))
    const access = new AccessStep({ gateId: config.gateId, clock, log: policies.log, policies, db })
    access.rebuild(db)
    Object.assign(parts, { validator, proximity, dedup, policies, access })
    const restored = dedup.restore(
      recentDecisions(db, {
        windowMs: config.dedup.windowMs,
        wallNow: clock.now(),
        machine,
        monoNow: clock.mono(),
      }),
      clock.now(),
      clock.mono(),
    )
    const decoder = createTokenDecoder(config.decoders)
    parts.decoderCounters = decoder.counters as unknown as Record<string, number>
    // passage confirmation needs a hook to confirm with: without one every admit stands
    const confirmPassage = config.actuator.confirmPassage && config.actuator.onAdmit !== undefined
    if (config.actuator.confirmPassage && !confirmPassage)
      log.warn(
        'actuator.confirmPassage is set without actuator.onAdmit: nothing can confirm a passage; ignored',
      )
    const pipeline = new Pipeline({
      decoder,
      proximity,
      dedup,
      validator,
      access,
      confirmPassage,
      decisions: outbox,
      clock,
      counters: this.counters,
      log: log.child({ component: 'pipeline' }),
    })
    parts.pipeline = pipeline
    const actuators = new Actuators(
      config.actuator,
      log,
      confirmPassage
        ? (admit, passed) => (passed ? access.passed(admit.id) : pipeline.annul(admit))
        : undefined,
    )
    this.actuators = actuators
    pipeline.on('decision', (decision) => {
      const { latencyMs: _latency, ...checkin } = decision
      this.run.lastDecision = checkin
      actuators.fire(decision)
    })
    return { pipeline, restored }
  }

  /** The syncer and the roster puller, when a cloud is configured (started once the source runs). */
  private buildSync(db: Db, roster: RosterStore, outbox: Outbox): void {
    const { config, clock, log } = this.deps
    const cloud = (this.deps.makeCloudClient ?? cloudClientFor)(config)
    if (!cloud) {
      log.info('no cloud configured (cloud.url and cloud.gateKey): check-ins stay on the gate')
      return
    }
    this.parts.syncer = new Syncer({
      db,
      outbox,
      client: cloud,
      clock,
      log: log.child({ component: 'sync' }),
      gateId: config.gateId,
      config: { ...config.cloud, intervalMs: config.cloud.syncIntervalMs },
      ...(config.cloud.drainYieldCommitMs > 0
        ? { yieldNow: () => outbox.msSinceSlowCommit() < DRAIN_YIELD_HOLD_MS }
        : {}),
    })
    if (this.parts.access)
      this.parts.occupancy = new OccupancySync({
        access: this.parts.access,
        client: cloud,
        log: log.child({ component: 'occupancy' }),
        intervalMs: Math.min(1_000, config.cloud.syncIntervalMs),
        refreshMs: config.cloud.rosterPullIntervalMs,
      })
    this.parts.puller = new RosterPuller({
      roster,
      policies: this.parts.policies,
      client: cloud,
      clock,
      log: log.child({ component: 'roster-pull' }),
      intervalMs: config.cloud.rosterPullIntervalMs,
      maxBackoffMs: config.cloud.maxBackoffMs,
    })
  }

  /** Stop in reverse order; each step isolated so one failure does not keep the rest running. */
  async stop(): Promise<void> {
    const log = this.deps.log
    const parts = this.parts
    const step = async (name: string, fn: () => unknown) => {
      this.stopStep = name
      try {
        await fn()
      } catch (err) {
        log.error({ err, step: name }, 'error while stopping')
      }
    }
    if (this.housekeeping) clearInterval(this.housekeeping)
    this.housekeeping = null
    this.stopHeapCompaction()
    // first, while everything still runs: the retained status says "offline (stopped)", not the will
    await step('reporter', () => parts.reporter?.stop())
    parts.reporter = null
    await step('source', () => parts.source?.stop())
    await step('outbox', () => parts.outbox?.flush())
    parts.outbox?.close()
    parts.occupancy?.stop()
    await step('sync', () => Promise.all([parts.syncer?.stop(), parts.puller?.stop()]))
    await step('actuators', () => this.actuators?.stop())
    await step('control', () => this.control?.stop())
    await step('store thread', () => parts.storeThread?.stop())
    await step('database', () => {
      if (parts.db?.open) {
        parts.db.pragma('wal_checkpoint(PASSIVE)')
        parts.db.close()
      }
    })
    this.stopStep = null
    parts.source = null
    this.control = null
    parts.syncer = null
    parts.puller = null
    parts.db = null
    parts.storeThread = null
  }

  /** The outbox, for tests and the benchmark (null before start). */
  get outboxForTests(): Outbox | null {
    return this.parts.outbox
  }

  /** The pipeline, for tests and the benchmark (null before start). */
  get pipelineForTests(): Pipeline | null {
    return this.parts.pipeline
  }

  /** The access rules' step, for tests and the benchmark (null before start). */
  get accessForTests(): AccessStep | null {
    return this.parts.access
  }

  /** A status snapshot for gatectl and the MQTT metrics. */
  status(): AgentStatus {
    return agentStatus(this.handlerSources())
  }

  /** What the syncer and the roster puller are doing. */
  syncStatus(): SyncStatus {
    return syncStatus(this.handlerSources())
  }

  /** What the status, the control handlers and the reporter read: the live parts and this run. */
  private handlerSources(): HandlerSources {
    const { config, clock, log } = this.deps
    return { parts: this.parts, run: this.run, config, clock, log }
  }

  /** Once a second: forget who left and what fell out of the re-entry window; prune a slice when due. */
  private tick(): void {
    const now = this.deps.clock.mono()
    this.parts.proximity?.sweep(now)
    this.parts.dedup?.dropExpired(now)
    this.pruneSchedule?.tick()
  }
}
