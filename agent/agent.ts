import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { Logger } from 'pino'
import { v4 as uuidv4 } from 'uuid'
import type { Checkin } from '../shared/checkin.js'
import type { StreamName } from '../shared/control.js'
import { logLevelParamsSchema, lookupParamsSchema } from '../shared/control.js'
import { advertToLine } from '../shared/replay.js'
import type { AgentStatus, SyncStatus } from '../shared/status.js'
import { productVersion } from '../shared/version.js'
import type { Actuator } from './actuator/actuator.js'
import { CommandActuator } from './actuator/command-actuator.js'
import { LogActuator } from './actuator/log-actuator.js'
import type { Advert, BleSource } from './ble/source.js'
import type { Clock } from './clock.js'
import type { AgentConfig } from './config/schema.js'
import { SOCKET_NAME } from './control/client.js'
import { ControlServer, refuseIfAnotherDaemon } from './control/server.js'
import { createTokenDecoder } from './decode/token-decoder.js'
import { startHeapCompaction } from './lifecycle/heap.js'
import { readScheduling } from './lifecycle/scheduling.js'
import { newPipelineCounters, type PipelineCounters } from './metrics.js'
import { Dedup } from './pipeline/dedup.js'
import { Pipeline } from './pipeline/pipeline.js'
import { Proximity } from './pipeline/proximity.js'
import { Validator } from './pipeline/validator.js'
import { EventWatch, GateMetricsSampler } from './report/gate-metrics.js'
import type { MqttReporter } from './report/mqtt-reporter.js'
import { type Db, isSqliteError, mapSqliteError } from './store/db.js'
import { openAgentDatabase } from './store/open-agent-db.js'
import { CLAIM_QUERIES, Outbox } from './store/outbox.js'
import { recentDecisions, recordRun } from './store/recent-decisions.js'
import { lookupToken } from './store/roster-lookup.js'
import { RosterStore } from './store/roster-store.js'
import { StoreThread } from './store/store-thread.js'
import { type CloudClient, HttpCloudClient, MultiCloudClient } from './sync/cloud-client.js'
import { RosterPuller } from './sync/roster-puller.js'
import { Syncer } from './sync/syncer.js'

/** The database file inside the data directory. */
export const DB_NAME = 'agent.db'

/** What the composition root is given from outside: the world the agent runs in. */
export interface AgentDeps {
  config: AgentConfig
  clock: Clock
  log: Logger
  /** builds the configured BLE source (noble, sim or replay) */
  makeSource: (config: AgentConfig) => BleSource
  /** runs before the source starts, with the open stores (the demo roster import) */
  beforeStart?: (stores: { roster: RosterStore }) => void
  /** the cloud, when configured (tests may pass their own); default: HTTP to config.cloud.url */
  makeCloudClient?: (config: AgentConfig) => CloudClient | null
}

/**
 * The gate agent: builds every component, starts them in order and stops them in reverse.
 * This is the only place that knows how the parts fit together.
 */
/**
 * After a slow decision commit, a backlog drain sends one batch at a time for this long, ms. A disk
 * that is contended stays so for a while (another writer, the cloud's ingest on a shared machine):
 * coming back to every lane after 2 s met the next slow commit within seconds (decision p99 5.0-5.4
 * ms during a drain, against 3.7-4.6 with 10 s, for the same drain time).
 */
const DRAIN_YIELD_HOLD_MS = 10_000

export class GateAgent {
  readonly bootId = uuidv4()
  readonly counters: PipelineCounters = newPipelineCounters()
  private db: Db | null = null
  private storeThread: StoreThread | null = null
  private reporter: MqttReporter | null = null
  private outbox: Outbox | null = null
  private roster: RosterStore | null = null
  private validator: Validator | null = null
  private proximity: Proximity | null = null
  private dedup: Dedup | null = null
  private pipeline: Pipeline | null = null
  private decoderCounters: Record<string, number> | null = null
  private source: BleSource | null = null
  private control: ControlServer | null = null
  private actuators: Actuator[] = []
  private housekeeping: NodeJS.Timeout | null = null
  private stopHeapCompaction: () => void = () => {}
  private startedAt: number | null = null
  private startedMono = 0
  private lastPrune = 0
  /** the prune under way (one slice per tick): rows deleted so far, and where the next slice starts */
  private pruned = 0
  private pruneFrom = 0
  private lastDecision: Checkin | null = null
  private syncer: Syncer | null = null
  private puller: RosterPuller | null = null
  private readonly version = productVersion()

  constructor(private readonly deps: AgentDeps) {}

  /** Start everything; on failure, whatever was started is stopped again and the error rethrown. */
  async start(): Promise<void> {
    const { config, clock, log } = this.deps
    const dbFile = path.join(config.dataDir, DB_NAME)
    try {
      await refuseIfAnotherDaemon(path.join(config.dataDir, SOCKET_NAME))
      // checked before anything is written to it: a damaged file is refused and left as it was
      const db = await openAgentDatabase(dbFile, log.child({ component: 'store' }))
      this.db = db
      // a validated integer (config schema), not free text
      db.pragma(`cache_size = -${config.outbox.cacheKiB}`)
      // off the event loop: WAL checkpoints always with outbox.checkpoint 'worker', and while a backlog
      // drains (the outbox starts and stops it then) claims and checkpoints
      this.storeThread = new StoreThread(db, dbFile, log.child({ component: 'store-thread' }), {
        queries: CLAIM_QUERIES,
      })
      if (config.outbox.checkpoint === 'worker') this.storeThread.start()
      db.prepare('INSERT INTO boots (boot_id, started_ms, version) VALUES (?, ?, ?)').run(
        this.bootId,
        clock.now(),
        this.version,
      )
      // the next start dates this run's decisions by the machine's clock, whatever the wall clock did
      const machine = clock.machine?.() ?? null
      if (machine) recordRun(db, this.bootId, machine)
      this.roster = new RosterStore(db, clock)
      this.outbox = new Outbox(db, {
        clock,
        log: log.child({ component: 'outbox' }),
        gateId: config.gateId,
        bootId: this.bootId,
        groupCommitDelayMs: config.outbox.groupCommitDelayMs,
        maxWaitMs: config.outbox.maxWaitMs,
        ...(config.cloud.drainYieldCommitMs > 0 ? { slowCommitMs: config.cloud.drainYieldCommitMs } : {}),
        thread: this.storeThread,
      })
      const recovered = this.outbox.recoverInFlight()
      if (recovered > 0)
        log.warn({ recovered }, 'in-flight check-ins returned to pending after an unclean stop')
      this.deps.beforeStart?.({ roster: this.roster })

      this.validator = new Validator(this.roster, {
        maxEntries: config.validation.l1MaxEntries,
        negativeTtlMs: config.validation.negativeTtlMs,
        clock,
      })
      this.proximity = new Proximity(config.proximity)
      this.dedup = new Dedup(config.dedup.windowMs)
      const restored = this.dedup.restore(
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
      this.decoderCounters = decoder.counters as unknown as Record<string, number>
      this.pipeline = new Pipeline({
        decoder,
        proximity: this.proximity,
        dedup: this.dedup,
        validator: this.validator,
        outbox: this.outbox,
        clock,
        counters: this.counters,
        log: log.child({ component: 'pipeline' }),
      })
      this.actuators = [new LogActuator(log.child({ component: 'decision' }))]
      if (config.actuator.onAdmit || config.actuator.onDeny) {
        this.actuators.push(new CommandActuator(config.actuator, log.child({ component: 'actuator' })))
      }
      this.pipeline.on('decision', (d) => {
        const { latencyMs: _latency, ...checkin } = d
        this.lastDecision = checkin
        for (const a of this.actuators) {
          try {
            a.fire(d)
          } catch (err) {
            log.error({ err, actuator: a.name }, 'actuator failed')
          }
        }
      })

      this.control = new ControlServer(
        path.join(config.dataDir, SOCKET_NAME),
        this.controlHandlers(),
        (stream, send) => this.subscribe(stream, send),
        log.child({ component: 'control' }),
      )
      await this.control.start()

      const cloud = (this.deps.makeCloudClient ?? defaultCloudClient)(config)
      if (cloud) {
        this.syncer = new Syncer({
          db,
          outbox: this.outbox,
          client: cloud,
          clock,
          log: log.child({ component: 'sync' }),
          gateId: config.gateId,
          config: { ...config.cloud, intervalMs: config.cloud.syncIntervalMs },
          ...(config.cloud.drainYieldCommitMs > 0
            ? {
                yieldNow: () =>
                  (this.outbox?.msSinceSlowCommit() ?? Number.POSITIVE_INFINITY) < DRAIN_YIELD_HOLD_MS,
              }
            : {}),
        })
        this.puller = new RosterPuller({
          roster: this.roster,
          client: cloud,
          clock,
          log: log.child({ component: 'roster-pull' }),
          intervalMs: config.cloud.rosterPullIntervalMs,
          maxBackoffMs: config.cloud.maxBackoffMs,
        })
      } else {
        log.info('no cloud configured (cloud.url and cloud.gateKey): check-ins stay on the gate')
      }

      this.source = this.deps.makeSource(config)
      const srcLog = log.child({ component: 'ble', source: this.source.kind })
      await this.source.start({
        advert: this.pipeline.handleAdvert,
        state: (s) => srcLog.debug({ state: s }, 'adapter state'),
        warn: (err) => srcLog.warn({ err: err.message, code: err.code }, 'source warning'),
        end: () => srcLog.info('source finished (end of capture)'),
      })
      this.startedAt = clock.now()
      this.startedMono = clock.mono()
      this.syncer?.start()
      this.puller?.start()
      if (config.mqtt.url) await this.startReporter(config.mqtt.url)
      this.housekeeping = setInterval(() => this.tick(), 1000)
      this.housekeeping.unref()
      this.stopHeapCompaction = startHeapCompaction(config.memory.majorGcEveryS * 1000, log)
      log.info(
        {
          gateId: config.gateId,
          version: this.version,
          bootId: this.bootId,
          source: this.source.kind,
          dataDir: config.dataDir,
          roster: this.roster.counts(),
          rosterVersion: this.roster.version(),
          dedupRestored: restored,
          pending: this.outbox.counts().pending,
        },
        'gate agent started',
      )
    } catch (err) {
      await this.stop()
      // a damaged page met after the check (its late verdict, a page in the WAL): still a clear exit 4
      throw isSqliteError(err) ? mapSqliteError(err, dbFile) : err
    }
  }

  /** Stop in reverse order; each step isolated so one failure does not keep the rest running. */
  async stop(): Promise<void> {
    const log = this.deps.log
    const step = async (name: string, fn: () => unknown) => {
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
    await step('reporter', () => this.reporter?.stop())
    this.reporter = null
    await step('source', () => this.source?.stop())
    await step('outbox', () => this.outbox?.flush())
    this.outbox?.close()
    await step('sync', () => Promise.all([this.syncer?.stop(), this.puller?.stop()]))
    await step('actuators', () => Promise.all(this.actuators.map((a) => a.stop())))
    await step('control', () => this.control?.stop())
    await step('store thread', () => this.storeThread?.stop())
    await step('database', () => {
      if (this.db?.open) {
        this.db.pragma('wal_checkpoint(PASSIVE)')
        this.db.close()
      }
    })
    this.source = null
    this.control = null
    this.syncer = null
    this.puller = null
    this.db = null
    this.storeThread = null
  }

  /** The outbox, for tests and the benchmark (null before start). */
  get outboxForTests(): Outbox | null {
    return this.outbox
  }

  /** The pipeline, for tests and the benchmark (null before start). */
  get pipelineForTests(): Pipeline | null {
    return this.pipeline
  }

  /** A status snapshot for gatectl and (later) MQTT. */
  status(): AgentStatus {
    const { clock, config } = this.deps
    const monoNow = clock.mono()
    const src = this.source?.status()
    const counts = this.outbox?.counts()
    const roster = this.roster
    return {
      daemon: 'running',
      gateId: config.gateId,
      version: this.version,
      bootId: this.bootId,
      startedAt: this.startedAt ? new Date(this.startedAt).toISOString() : null,
      uptimeS: this.startedAt ? Math.round((monoNow - this.startedMono) / 1000) : null,
      source: src
        ? {
            kind: src.kind,
            adapterState: src.adapterState,
            radio: src.radio,
            scanning: src.scanning,
            scanRestarts: src.scanRestarts,
            lastAdvertAgeS:
              src.lastAdvertAt === null ? null : Math.round((monoNow - src.lastAdvertAt) / 100) / 10,
            detail: src.detail,
          }
        : null,
      advertsPerS: this.pipeline ? this.pipeline.advertRate.rate(monoNow) : null,
      counters: { ...this.counters, deny: { ...this.counters.deny } },
      decoders: this.decoderCounters ? { ...this.decoderCounters } : null,
      l1: this.validator ? { hitRate: this.validator.hitRate(), entries: this.validator.size() } : null,
      buffer: {
        pending: counts?.pending ?? 0,
        inFlight: counts?.inFlight ?? 0,
        synced: counts?.synced ?? 0,
        oldestPendingAgeS:
          counts?.oldestUnsyncedMs == null
            ? null
            : Math.max(0, Math.round((clock.now() - counts.oldestUnsyncedMs) / 1000)),
      },
      writes: this.outbox
        ? { ...this.outbox.stats, waiting: this.outbox.queued(), ioWriteBytes: readIoWriteBytes() }
        : null,
      roster: roster
        ? { version: roster.version(), ...roster.counts() }
        : { version: 0, active: 0, revoked: 0, inactive: 0 },
      lastDecision: this.lastDecision,
      lastSync: this.lastSync(),
      sync: this.syncStatus(),
      mqtt: { state: this.reporter?.state ?? (config.mqtt.url ? 'not started' : 'not configured') },
      scheduling: readScheduling(),
    }
  }

  private lastSync(): AgentStatus['lastSync'] {
    const st = this.syncer?.status()
    if (!st?.lastAttemptAt)
      return st?.lastSuccessAt ? { at: new Date(st.lastSuccessAt).toISOString(), ok: true } : null
    const ok = st.lastError === null
    return {
      at: new Date(ok && st.lastSuccessAt ? st.lastSuccessAt : st.lastAttemptAt).toISOString(),
      ok,
      error: st.lastError,
    }
  }

  /** What the syncer and the roster puller are doing. */
  syncStatus(): SyncStatus {
    const { clock, config } = this.deps
    const st = this.syncer?.status()
    const r = this.puller?.status()
    const iso = (t: number | null | undefined) => (t ? new Date(t).toISOString() : null)
    return {
      state: st ? st.state : 'disabled',
      cloudUrl: config.cloud.url ?? null,
      lastAttemptAt: iso(st?.lastAttemptAt),
      lastSuccessAt: iso(st?.lastSuccessAt),
      lastError: st?.lastError ?? null,
      consecutiveFailures: st?.consecutiveFailures ?? 0,
      nextAttemptInS: st?.nextAttemptAt
        ? Math.max(0, Math.round((st.nextAttemptAt - clock.now()) / 100) / 10)
        : null,
      batchSize: st?.batchSize ?? config.cloud.batchSize,
      accepted: st?.accepted ?? 0,
      duplicates: st?.duplicates ?? 0,
      rejected: st?.rejected ?? 0,
      clockOffsetMs: st?.clockOffsetMs ?? null,
      drainYielding: st?.yielding ?? false,
      drainYields: st?.yields ?? 0,
      storeThread: {
        state: this.storeThread?.state ?? 'off',
        starts: this.storeThread?.stats.starts ?? 0,
      },
      roster: {
        cursor: r?.cursor ?? this.roster?.cloudCursor() ?? 0,
        lastPullAt: iso(r?.lastPullAt),
        lastError: r?.lastError ?? null,
        applied: r?.applied ?? 0,
      },
    }
  }

  private tick(): void {
    const now = this.deps.clock.mono()
    this.proximity?.sweep(now)
    this.dedup?.dropExpired(now)
    if (this.outbox && this.deps.clock.now() - this.lastPrune > 3_600_000) {
      // a slice per tick until none is left, then again in an hour; a failure (the file locked by
      // an import, a full disk) is logged and tried again at the next hour, the agent goes on
      try {
        // never a row still inside the re-entry window: it is what a restart rebuilds that memory from
        const { retentionDays } = this.deps.config.outbox
        const days = Math.max(retentionDays, this.deps.config.dedup.windowMs / 86_400_000)
        const r = this.outbox.prune(days, { from: this.pruneFrom })
        this.pruned += r.deleted
        if (r.next === null) {
          this.lastPrune = this.deps.clock.now()
          if (this.pruned > 0) this.deps.log.info({ deleted: this.pruned }, 'old synced check-ins pruned')
          this.pruned = 0
          this.pruneFrom = 0
        } else {
          this.pruneFrom = r.next
        }
      } catch (err) {
        this.lastPrune = this.deps.clock.now()
        this.pruned = 0
        this.pruneFrom = 0
        this.deps.log.error({ err }, 'pruning old synced check-ins failed; trying again in an hour')
      }
    }
  }

  private subscribe(stream: StreamName, send: (data: unknown) => void): () => void {
    const p = this.pipeline
    if (!p) return () => {}
    const event = stream === 'decisions' ? 'decision' : stream === 'sightings' ? 'sighting' : 'advert'
    const listener =
      event === 'advert'
        ? (a: unknown) => {
            // the capture format's fields (shared/replay.ts), stamped with the monotonic time
            const ad = a as Advert
            const { t: _t, ...fields } = advertToLine(ad, 0)
            send({ ...fields, ts: ad.ts })
          }
        : send
    p.on(event, listener as never)
    return () => p.off(event, listener as never)
  }

  private async startReporter(url: string): Promise<void> {
    const { config, clock, log } = this.deps
    // mqtt.js and what it brings (streams, timers, its packet codec) cost a gate several MB of
    // resident memory: loaded only by a gate that reports over MQTT
    const { MqttReporter } = await import('./report/mqtt-reporter.js')
    const sampler = new GateMetricsSampler(config.dataDir)
    const watch = new EventWatch(config.mqtt)
    const handlers = this.controlHandlers()
    const reporter = new MqttReporter({
      url,
      username: config.mqtt.username,
      password: config.mqtt.password,
      gateId: config.gateId,
      bootId: this.bootId,
      version: this.version,
      startedAt: new Date(this.startedAt ?? clock.now()).toISOString(),
      db: this.db as Db,
      clock,
      log: log.child({ component: 'mqtt' }),
      intervalMs: config.mqtt.metricsIntervalMs,
      keepaliveS: config.mqtt.keepaliveS,
      commandSecret: config.mqtt.commandSecret,
      metrics: () => {
        const now = clock.now()
        const m = sampler.sample(this.status(), now)
        const pulled = this.puller?.status().lastPullAt ?? null
        const rosterAge = this.puller ? (now - (pulled ?? this.startedAt ?? now)) / 1000 : null
        for (const e of watch.check(m, rosterAge)) reporter.event(e.kind, e.detail)
        return m
      },
      commands: {
        resync_roster: async () => this.puller?.pullNow() ?? { disabled: 'no cloud configured' },
        sync_now: async () => handlers['sync.now'](),
        restart_scan: async () => handlers['scan.restart'](),
        set_log_level: async (params) => handlers['log.level'](params),
      },
    })
    reporter.start()
    this.reporter = reporter
  }

  private controlHandlers() {
    return {
      status: () => this.status(),
      'roster.invalidate': () => {
        this.roster?.notifyExternalChange()
        return { rosterVersion: this.roster?.version() ?? 0 }
      },
      'roster.lookup': (params: Record<string, unknown>) => {
        const { token } = lookupParamsSchema.parse(params)
        if (!this.db || !this.dedup || !this.proximity) return null
        return lookupToken(this.db, token.toLowerCase(), {
          windowMs: this.deps.config.dedup.windowMs,
          now: this.deps.clock.now(),
          present: this.proximity.isPresent(token.toLowerCase()),
          smoothedRssi: this.proximity.smoothed(token.toLowerCase()) ?? null,
        })
      },
      'scan.restart': async () => {
        await this.source?.restartScan()
        return this.source?.status() ?? null
      },
      'sync.now': async () => {
        await Promise.all([this.syncer?.syncNow(), this.puller?.pullNow()])
        return this.syncStatus()
      },
      'sync.resendRefused': () => {
        const resent = this.outbox?.resendRefused() ?? 0
        if (resent > 0) void this.syncer?.syncNow()
        return { resent }
      },
      'log.level': (params: Record<string, unknown>) => {
        const { level } = logLevelParamsSchema.parse(params)
        this.deps.log.level = level
        return { level }
      },
    }
  }
}

/** The HTTP cloud client, when the gate has a cloud URL and a key. */
function defaultCloudClient(config: AgentConfig): CloudClient | null {
  const { url, gateKey, timeoutMs } = config.cloud
  if (!url || !gateKey) return null
  const urls = url.split(',').map((u) => u.trim())
  return urls.length > 1
    ? new MultiCloudClient(urls, gateKey, timeoutMs)
    : new HttpCloudClient(url, gateKey, timeoutMs)
}

/** Bytes this process caused to be written to storage (/proc/self/io), or null where unavailable. */
export function readIoWriteBytes(): number | null {
  try {
    const m = /write_bytes:\s*(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}
