import { readFileSync } from 'node:fs'
import os from 'node:os'
import mqtt from 'mqtt'
import type pg from 'pg'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { z } from 'zod'
import { GateError } from '../../shared/errors.js'
import type { CloudConfig } from '../config.js'
import { HOT_TABLES } from '../ops/analyze.js'
import { MqttSink, WebhookSink } from './alert-sinks.js'
import {
  type AlertAction,
  AlertEngine,
  type AlertEvent,
  type AlertRule,
  type AlertSink,
  alertRuleSchema,
  SEED_RULES,
} from './alerts.js'
import { Autoscaler, autoscaleDefaults, KubernetesTarget, RecommendTarget } from './autoscaler.js'
import type { PerfMonitor } from './perf.js'
import { type PlanAdvisor, ruleSuggestions } from './suggestions.js'

/** The seed's rules plus the ones of ALERT_RULES_FILE (a JSON array; a rule of the same name replaces a seed rule). */
export function loadRules(file: string | undefined): AlertRule[] {
  if (!file) return [...SEED_RULES]
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new GateError('E_CONFIG_INVALID', `ALERT_RULES_FILE ${file}: ${(err as Error).message}`)
  }
  const r = z.array(alertRuleSchema).safeParse(raw)
  if (!r.success)
    throw new GateError(
      'E_CONFIG_INVALID',
      `ALERT_RULES_FILE ${file}:\n  - ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n  - ')}`,
    )
  const byName = new Map(SEED_RULES.map((x) => [x.name, x]))
  for (const x of r.data) byName.set(x.name, x)
  return [...byName.values()]
}

export interface Recovery {
  engine: AlertEngine
  autoscaler: Autoscaler
  stop(): Promise<void>
}

/**
 * The alert engine with its sinks and actions, and the autoscaler, for `gate-cloud serve`.
 * - AUTO_SCALE: the autoscaler decides now (recommends, or scales the Deployment).
 * - OPTIMIZE_QUERIES: ANALYZE of the hot tables, then the suggestions, logged and in the event.
 * - RESTART_SERVICE: `requestRestart` (drain, close, exit for the supervisor to restart), refused
 *   before RESTART_MIN_UPTIME_MS of uptime and within RESTART_MIN_INTERVAL_MS of this node's last
 *   restart (read from alert_events): it can never loop.
 */
export async function startRecovery(deps: {
  config: CloudConfig
  pool: pg.Pool
  perf: PerfMonitor
  advisor: PlanAdvisor
  registry: Registry
  log: Logger
  requestRestart: (reason: string) => void
}): Promise<Recovery> {
  const { config, pool, perf, log } = deps
  const node = config.nodeName ?? os.hostname()
  const rules = loadRules(config.alerts.rulesFile)
  const a = config.autoscale
  const autoscaler = new Autoscaler(
    { ...autoscaleDefaults, target: a.targetCpuPercent, min: a.min, max: a.max },
    a.kubernetesDeployment ? new KubernetesTarget(a.kubernetesDeployment) : new RecommendTarget(a.replicas),
    log.child({ component: 'autoscaler' }),
    deps.registry,
  )
  const sinks: AlertSink[] = []
  if (config.alerts.webhookUrl) sinks.push(new WebhookSink(config.alerts.webhookUrl, node))
  let broker: mqtt.MqttClient | null = null
  if (config.alerts.mqttUrl) {
    broker = mqtt.connect(config.alerts.mqttUrl, {
      clientId: `gate-cloud-alerts-${node}-${process.pid}`,
      username: config.alerts.mqttUsername,
      password: config.alerts.mqttPassword,
      reconnectPeriod: 2_000,
      connectTimeout: 5_000,
    })
    broker.on('error', (err) => log.warn({ err: err.message }, 'alert MQTT connection error'))
    const b = broker
    sinks.push(
      new MqttSink(
        async (topic, payload) => {
          if (!b.connected) throw new Error('MQTT broker not connected')
          await b.publishAsync(topic, payload, { qos: 1 })
        },
        config.alerts.mqttTopic,
        node,
      ),
    )
  }
  const actions: Record<AlertAction, (e: AlertEvent) => Promise<string>> = {
    AUTO_SCALE: async () => {
      const d = await autoscaler.evaluate(perf.snapshot().system.cpuPercentAvg)
      return d.reason
    },
    OPTIMIZE_QUERIES: async () => {
      for (const t of HOT_TABLES) await pool.query(`ANALYZE ${t}`) // fixed identifiers, never input
      const s = [...ruleSuggestions(perf.snapshot(), config.monitor.slowQueryMs)]
      try {
        s.push(...(await deps.advisor.suggestions()))
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'query plans unavailable for the suggestions')
      }
      log.warn({ suggestions: s.map((x) => `${x.priority}: ${x.message}`) }, 'query optimisation suggestions')
      return `analyzed ${HOT_TABLES.length} tables; ${s.length} suggestion(s): ${s
        .slice(0, 3)
        .map((x) => x.message)
        .join(' | ')}`
    },
    RESTART_SERVICE: async (e) => {
      const uptimeMs = process.uptime() * 1000
      if (uptimeMs < config.alerts.restartMinUptimeMs)
        return `refused: up ${Math.round(uptimeMs / 1000)} s, under RESTART_MIN_UPTIME_MS`
      const last = await pool.query<{ at: Date }>(
        `SELECT at FROM alert_events WHERE node = $1 AND action = 'RESTART_SERVICE' AND action_result = 'restarting'
          ORDER BY at DESC LIMIT 1`,
        [node],
      )
      const lastAt = last.rows[0]?.at.getTime()
      if (lastAt !== undefined && Date.now() - lastAt < config.alerts.restartMinIntervalMs)
        return `refused: this node restarted itself at ${new Date(lastAt).toISOString()}, within RESTART_MIN_INTERVAL_MS`
      // recorded (by the engine) before the restart happens: the guard of the next process sees it
      setTimeout(() => deps.requestRestart(`alert ${e.rule}`), 1_000).unref()
      return 'restarting'
    },
  }
  const engine = new AlertEngine(rules, {
    sinks,
    actions,
    record: async (e) => {
      await pool.query(
        `INSERT INTO alert_events (node, rule, severity, state, metric, value, threshold, action, action_result, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, to_timestamp($10 / 1000.0))`,
        [
          node,
          e.rule,
          e.severity,
          e.state,
          e.metric,
          e.value,
          e.threshold,
          e.action ?? null,
          e.actionResult ?? null,
          e.at,
        ],
      )
    },
    log: log.child({ component: 'alerts' }),
    registry: deps.registry,
  })
  const alertTimer = setInterval(() => {
    engine.evaluate(perf.snapshot()).catch((err) => log.error({ err }, 'alert evaluation failed'))
  }, config.alerts.evaluateIntervalMs)
  alertTimer.unref()
  const scaleTimer = setInterval(() => {
    autoscaler
      .evaluate(perf.snapshot().system.cpuPercentAvg)
      .catch((err) => log.warn({ err: (err as Error).message }, 'autoscaler evaluation failed'))
  }, config.autoscale.intervalMs)
  scaleTimer.unref()
  log.info(
    {
      rules: rules.map((r) => r.name),
      sinks: ['log', ...sinks.map((s) => s.name)],
      autoscaler: autoscaler.mode,
    },
    'alerts and autoscaler running',
  )
  return {
    engine,
    autoscaler,
    stop: async () => {
      clearInterval(alertTimer)
      clearInterval(scaleTimer)
      await broker?.endAsync().catch(() => {})
    },
  }
}
