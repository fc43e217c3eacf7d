import { readFileSync } from 'node:fs'
import https from 'node:https'
import type { Logger } from 'pino'
import { Gauge, type Registry } from 'prom-client'

/**
 * The Kubernetes HPA algorithm (instead of the seed's x1.5 / x0.7, which flaps):
 * desired = ceil(current x metric / target), unchanged while metric/target is within the tolerance,
 * clamped to [min, max]; a scale-down only goes as low as the highest recommendation of the
 * stabilisation window, so one quiet minute does not remove nodes that the next busy one needs.
 */
export interface AutoscalePolicy {
  /** target of the metric per node (e.g. 70: % CPU of one core) */
  target: number
  tolerance: number
  min: number
  max: number
  /** scale-down stabilisation window, ms (HPA default: 5 minutes) */
  downStabilizationMs: number
}

export const autoscaleDefaults: AutoscalePolicy = {
  target: 70,
  tolerance: 0.1,
  min: 2,
  max: 10,
  downStabilizationMs: 300_000,
}

/** One step of the HPA formula, without the stabilisation window. */
export function hpaDesired(current: number, metric: number, p: AutoscalePolicy): number {
  const cur = Math.max(1, current)
  const ratio = metric / p.target
  const raw = Math.abs(ratio - 1) <= p.tolerance ? cur : Math.ceil(cur * ratio)
  return Math.min(p.max, Math.max(p.min, raw))
}

export interface ScaleDecision {
  at: number
  current: number
  metric: number
  /** what the formula says now */
  recommended: number
  /** what to run, after the stabilisation window */
  desired: number
  reason: string
}

/** Where replicas are read and set: a recommendation only, or a Kubernetes Deployment. */
export interface ScaleTarget {
  readonly kind: 'recommend' | 'kubernetes'
  current(): Promise<number>
  scale(replicas: number): Promise<void>
}

export class Autoscaler {
  private readonly history: Array<{ at: number; recommended: number }> = []
  private last: ScaleDecision | null = null
  private readonly gauge: Gauge<'kind'>

  constructor(
    private readonly policy: AutoscalePolicy,
    private readonly target: ScaleTarget,
    private readonly log: Logger,
    registry: Registry,
    private readonly now: () => number = Date.now,
  ) {
    this.gauge = new Gauge({
      name: 'autoscaler_replicas',
      help: 'Replicas: current, recommended (formula now) and desired (after stabilisation)',
      labelNames: ['kind'],
      registers: [registry],
    })
  }

  get lastDecision(): ScaleDecision | null {
    return this.last
  }

  get mode(): ScaleTarget['kind'] {
    return this.target.kind
  }

  /** Decide from the metric now (average over the nodes, or this node's); scale when a target is set. */
  async evaluate(metric: number): Promise<ScaleDecision> {
    const at = this.now()
    const current = await this.target.current()
    const recommended = hpaDesired(current, metric, this.policy)
    this.history.push({ at, recommended })
    while (this.history.length > 0 && at - (this.history[0]?.at ?? at) > this.policy.downStabilizationMs)
      this.history.shift()
    // scale-down: no lower than the highest recommendation of the window; scale-up: at once
    const windowMax = Math.max(...this.history.map((h) => h.recommended))
    const desired = recommended >= current ? recommended : Math.min(current, windowMax)
    const reason =
      desired === current
        ? recommended < current
          ? `holding ${current}: scale-down stabilisation (highest recommendation in the window ${windowMax})`
          : `metric ${metric.toFixed(1)} within ${this.policy.tolerance * 100} % of target ${this.policy.target}`
        : `metric ${metric.toFixed(1)} vs target ${this.policy.target}: ${current} -> ${desired}`
    const d: ScaleDecision = { at, current, metric, recommended, desired, reason }
    this.last = d
    this.gauge.set({ kind: 'current' }, current)
    this.gauge.set({ kind: 'recommended' }, recommended)
    this.gauge.set({ kind: 'desired' }, desired)
    if (desired !== current) {
      if (this.target.kind === 'kubernetes') {
        await this.target.scale(desired)
        this.log.warn({ ...d }, 'autoscaler: scaled the deployment')
      } else {
        this.log.warn({ ...d }, 'autoscaler: recommends a new replica count')
      }
    }
    return d
  }
}

/** Recommend only: the current count is what the operator says (AUTOSCALE_REPLICAS), never changed. */
export class RecommendTarget implements ScaleTarget {
  readonly kind = 'recommend' as const
  constructor(private readonly replicas: number) {}
  async current(): Promise<number> {
    return this.replicas
  }
  async scale(): Promise<void> {}
}

/**
 * A Deployment's scale subresource through the Kubernetes API, with the pod's service account
 * (in-cluster: token, CA and namespace from /var/run/secrets/kubernetes.io/serviceaccount).
 */
export class KubernetesTarget implements ScaleTarget {
  readonly kind = 'kubernetes' as const
  private readonly token: string
  private readonly ca: Buffer
  private readonly namespace: string
  private readonly host: string
  private readonly port: number

  constructor(
    private readonly deployment: string,
    dir = '/var/run/secrets/kubernetes.io/serviceaccount',
    env: NodeJS.ProcessEnv = process.env,
  ) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(deployment))
      throw new Error(`bad deployment name ${deployment}`)
    this.token = readFileSync(`${dir}/token`, 'utf8').trim()
    this.ca = readFileSync(`${dir}/ca.crt`)
    this.namespace = readFileSync(`${dir}/namespace`, 'utf8').trim()
    this.host = env['KUBERNETES_SERVICE_HOST'] ?? 'kubernetes.default.svc'
    this.port = Number(env['KUBERNETES_SERVICE_PORT'] ?? 443)
  }

  private call(method: string, body?: unknown): Promise<{ spec?: { replicas?: number } }> {
    const path = `/apis/apps/v1/namespaces/${encodeURIComponent(this.namespace)}/deployments/${this.deployment}/scale`
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: this.host,
          port: this.port,
          path,
          method,
          ca: this.ca,
          timeout: 5_000,
          headers: {
            authorization: `Bearer ${this.token}`,
            accept: 'application/json',
            ...(body ? { 'content-type': 'application/merge-patch+json' } : {}),
          },
        },
        (res) => {
          let text = ''
          res.on('data', (c) => {
            text += c
          })
          res.on('end', () => {
            if ((res.statusCode ?? 500) >= 300)
              reject(new Error(`Kubernetes API ${res.statusCode}: ${text.slice(0, 200)}`))
            else resolve(JSON.parse(text || '{}'))
          })
        },
      )
      req.on('timeout', () => req.destroy(new Error('Kubernetes API timeout')))
      req.on('error', reject)
      if (body) req.write(JSON.stringify(body))
      req.end()
    })
  }

  async current(): Promise<number> {
    return (await this.call('GET')).spec?.replicas ?? 1
  }

  async scale(replicas: number): Promise<void> {
    await this.call('PATCH', { spec: { replicas } })
  }
}
