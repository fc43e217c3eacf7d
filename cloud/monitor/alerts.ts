import type { Logger } from 'pino'
import { Counter, Gauge, type Registry } from 'prom-client'
import { z } from 'zod'
import type { PerfSnapshot } from './perf.js'

/** The figures a rule can watch, from the performance monitor's window. */
export const ALERT_METRICS = {
  'http.avgMs': (p: PerfSnapshot) => (p.requests.count ? p.requests.avgMs : null),
  'http.p99Ms': (p: PerfSnapshot) => (p.requests.count ? p.requests.p99Ms : null),
  'http.errorRate': (p: PerfSnapshot) => (p.requests.count ? p.requests.errorRate : null),
  'http.slowRequests': (p: PerfSnapshot) => p.slowRequests,
  'db.avgMs': (p: PerfSnapshot) => (p.dbOverall.count ? p.dbOverall.avgMs : null),
  'db.slowQueries': (p: PerfSnapshot) => p.slowQueries,
  'db.errorRate': (p: PerfSnapshot) => (p.dbOverall.count ? p.dbOverall.errorRate : null),
  'cache.hitRate': (p: PerfSnapshot) => p.cache.overallHitRate,
  'system.memoryUsed': (p: PerfSnapshot) => p.system.now?.memoryUsed ?? null,
  'system.cpuPercent': (p: PerfSnapshot) => p.system.now?.cpuPercent ?? null,
  'system.eventLoopLagP99Ms': (p: PerfSnapshot) => p.system.now?.eventLoopLagP99Ms ?? null,
} as const
export type AlertMetric = keyof typeof ALERT_METRICS

export const ACTIONS = ['AUTO_SCALE', 'OPTIMIZE_QUERIES', 'RESTART_SERVICE'] as const
export type AlertAction = (typeof ACTIONS)[number]

export const alertRuleSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/),
    metric: z.enum(Object.keys(ALERT_METRICS) as [AlertMetric, ...AlertMetric[]]),
    op: z.enum(['>', '<']),
    threshold: z.number(),
    /** the condition must hold this long before the alert fires, s */
    forSeconds: z.number().min(0).default(0),
    /** hysteresis: once firing, it resolves only past this value (default: the threshold) */
    resolveAt: z.number().optional(),
    severity: z.enum(['info', 'warning', 'critical']),
    action: z.enum(ACTIONS).optional(),
    summary: z.string().max(300).optional(),
  })
  .strict()
export type AlertRule = z.infer<typeof alertRuleSchema>

/** The seed's three rules. */
export const SEED_RULES: AlertRule[] = [
  {
    name: 'SlowResponses',
    metric: 'http.avgMs',
    op: '>',
    threshold: 2000,
    forSeconds: 60,
    resolveAt: 1500,
    severity: 'warning',
    action: 'AUTO_SCALE',
    summary: 'average response time over 2 s',
  },
  {
    name: 'SlowQueries',
    metric: 'db.slowQueries',
    op: '>',
    threshold: 10,
    forSeconds: 0,
    resolveAt: 5,
    severity: 'critical',
    action: 'OPTIMIZE_QUERIES',
    summary: 'more than 10 slow queries in the window',
  },
  {
    name: 'MemoryHigh',
    metric: 'system.memoryUsed',
    op: '>',
    threshold: 0.9,
    forSeconds: 120,
    resolveAt: 0.85,
    severity: 'critical',
    action: 'RESTART_SERVICE',
    summary: 'memory use over 90 %',
  },
]

export interface AlertEvent {
  rule: string
  severity: AlertRule['severity']
  state: 'firing' | 'resolved'
  /** the watched metric, or `fleet` for what the fleet monitor raises */
  metric: AlertMetric | 'fleet'
  value: number
  threshold: number
  at: number
  /** when it started firing */
  since: number
  summary: string
  action?: AlertAction
  actionResult?: string
}

/** Where alerts go: the log always; an Alertmanager-compatible webhook and an MQTT topic when set. */
export interface AlertSink {
  name: string
  deliver(e: AlertEvent): Promise<void>
}

type RuleState = { state: 'ok' } | { state: 'pending'; since: number } | { state: 'firing'; since: number }

/**
 * Rules evaluated on every tick: a condition held for `forSeconds` fires (once), and resolves when
 * the value crosses back past `resolveAt` (hysteresis, so a value hovering at the threshold does not
 * flap). A firing runs the rule's action. Every firing, resolution and action goes to the sinks and
 * to `record` (the alert_events table).
 */
export class AlertEngine {
  private readonly states = new Map<string, RuleState>()
  private readonly firedTotal: Counter<'rule' | 'severity'>
  private readonly firingGauge: Gauge<'rule' | 'severity'>
  readonly recent: AlertEvent[] = []

  constructor(
    private readonly rules: readonly AlertRule[],
    private readonly deps: {
      sinks: AlertSink[]
      actions: Partial<Record<AlertAction, (e: AlertEvent) => Promise<string>>>
      record: (e: AlertEvent) => Promise<void>
      log: Logger
      registry: Registry
      now?: () => number
    },
  ) {
    this.firedTotal = new Counter({
      name: 'alerts_fired_total',
      help: 'Alerts fired by rule and severity',
      labelNames: ['rule', 'severity'],
      registers: [deps.registry],
    })
    this.firingGauge = new Gauge({
      name: 'alerts_firing',
      help: '1 while a rule is firing',
      labelNames: ['rule', 'severity'],
      registers: [deps.registry],
    })
  }

  /** Rules currently firing. */
  firing(): Array<{ rule: string; since: number }> {
    return [...this.states]
      .filter(([, s]) => s.state === 'firing')
      .map(([rule, s]) => ({ rule, since: (s as { since: number }).since }))
  }

  /** An alert from elsewhere (the fleet monitor): delivered and recorded like a rule's firing. */
  async raise(a: {
    rule: string
    severity: AlertRule['severity']
    summary: string
    value?: number
  }): Promise<void> {
    const at = (this.deps.now ?? Date.now)()
    await this.handle({
      rule: a.rule,
      severity: a.severity,
      state: 'firing',
      metric: 'fleet',
      value: a.value ?? 1,
      threshold: 0,
      at,
      since: at,
      summary: a.summary,
    })
  }

  async evaluate(p: PerfSnapshot): Promise<AlertEvent[]> {
    const now = (this.deps.now ?? Date.now)()
    const out: AlertEvent[] = []
    for (const r of this.rules) {
      const value = ALERT_METRICS[r.metric](p)
      const st = this.states.get(r.name) ?? { state: 'ok' }
      if (value === null) continue
      const over = r.op === '>' ? value > r.threshold : value < r.threshold
      const resolveAt = r.resolveAt ?? r.threshold
      const clear = r.op === '>' ? value <= resolveAt : value >= resolveAt
      if (st.state === 'firing') {
        if (clear) {
          this.states.set(r.name, { state: 'ok' })
          out.push(this.event(r, 'resolved', value, now, st.since))
        }
        continue
      }
      if (!over) {
        if (st.state === 'pending') this.states.set(r.name, { state: 'ok' })
        continue
      }
      const since = st.state === 'pending' ? st.since : now
      if (now - since >= r.forSeconds * 1000) {
        this.states.set(r.name, { state: 'firing', since })
        out.push(this.event(r, 'firing', value, now, since))
      } else if (st.state === 'ok') {
        this.states.set(r.name, { state: 'pending', since })
      }
    }
    for (const e of out) await this.handle(e)
    return out
  }

  private event(
    r: AlertRule,
    state: AlertEvent['state'],
    value: number,
    at: number,
    since: number,
  ): AlertEvent {
    return {
      rule: r.name,
      severity: r.severity,
      state,
      metric: r.metric,
      value,
      threshold: r.threshold,
      at,
      since,
      summary: r.summary ?? `${r.metric} ${r.op} ${r.threshold}`,
      ...(r.action ? { action: r.action } : {}),
    }
  }

  private async handle(e: AlertEvent): Promise<void> {
    const log = this.deps.log
    const labels = { rule: e.rule, severity: e.severity }
    if (e.state === 'firing') {
      this.firedTotal.inc(labels)
      this.firingGauge.set(labels, 1)
      const run = e.action ? this.deps.actions[e.action] : undefined
      if (e.action && run) {
        try {
          e.actionResult = await run(e)
        } catch (err) {
          e.actionResult = `failed: ${(err as Error).message}`
        }
      } else if (e.action) {
        e.actionResult = 'not available on this node'
      }
    } else {
      this.firingGauge.set(labels, 0)
    }
    const level = e.state === 'firing' && e.severity === 'critical' ? 'error' : 'warn'
    log[level]({ alert: e }, `alert ${e.rule} ${e.state}`)
    this.recent.push(e)
    if (this.recent.length > 100) this.recent.shift()
    await Promise.all([
      this.deps.record(e).catch((err) => log.warn({ err: (err as Error).message }, 'alert not recorded')),
      ...this.deps.sinks.map((s) =>
        s
          .deliver(e)
          .catch((err) => log.warn({ err: (err as Error).message, sink: s.name }, 'alert not delivered')),
      ),
    ])
  }
}
