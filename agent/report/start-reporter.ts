import type { ControlHandlers, HandlerSources } from '../control/handlers.js'
import { agentStatus } from '../status.js'
import type { Db } from '../store/db.js'
import { EventWatch, GateMetricsSampler } from './gate-metrics.js'
import type { MqttReporter } from './mqtt-reporter.js'

/** What the reporter is started from: the handlers' sources, the open database and the handlers. */
export interface ReporterSources {
  /** the status's sources and the root log, as the control handlers get them */
  from: HandlerSources
  db: Db
  /** the MQTT commands do what the control socket's methods of the same meaning do */
  handlers: ControlHandlers
}

/**
 * Start reporting to the fleet over MQTT: metrics sampled from the status (with the events they
 * raise), and the signed commands answered by the control handlers.
 */
export async function startMqttReporter(url: string, sources: ReporterSources): Promise<MqttReporter> {
  const { from, db, handlers } = sources
  const { config, clock, log, parts, run } = from
  // mqtt.js and what it brings (streams, timers, its packet codec) cost a gate several MB of
  // resident memory: loaded only by a gate that reports over MQTT
  const { MqttReporter } = await import('./mqtt-reporter.js')
  const sampler = new GateMetricsSampler(config.dataDir)
  const watch = new EventWatch(config.mqtt)
  const reporter = new MqttReporter({
    url,
    username: config.mqtt.username,
    password: config.mqtt.password,
    gateId: config.gateId,
    bootId: run.bootId,
    version: run.version,
    startedAt: new Date(run.startedAt ?? clock.now()).toISOString(),
    db,
    clock,
    log: log.child({ component: 'mqtt' }),
    intervalMs: config.mqtt.metricsIntervalMs,
    keepaliveS: config.mqtt.keepaliveS,
    commandSecret: config.mqtt.commandSecret,
    metrics: () => {
      const now = clock.now()
      const metrics = sampler.sample(agentStatus(from), now)
      const puller = parts.puller
      const pulledAt = puller?.status().lastPullAt ?? null
      const rosterAgeS = puller ? (now - (pulledAt ?? run.startedAt ?? now)) / 1000 : null
      for (const event of watch.check(metrics, rosterAgeS)) reporter.event(event.kind, event.detail)
      return metrics
    },
    // with an access policy: the other gates' passages, for anti-passback across the gates of a zone
    onPassage: parts.access ? (passage) => parts.access?.learn(passage) : undefined,
    commands: {
      resync_roster: async () => parts.puller?.pullNow() ?? { disabled: 'no cloud configured' },
      sync_now: async () => handlers['sync.now'](),
      restart_scan: async () => handlers['scan.restart'](),
      set_log_level: async (params) => handlers['log.level'](params),
      // the console's check-out by hand: the person left this gate's zone unseen
      checkout: async (params) =>
        handlers['checkin.byHand']({ ...params, decision: 'admit', direction: 'out' }),
    },
  })
  reporter.start()
  if (parts.access) parts.access.onShare = (passage) => reporter.sharePassage(passage)
  return reporter
}
