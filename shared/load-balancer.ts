import { z } from 'zod'

/** What a cloud node reports about itself (GET /v1/load, and the X-Gate-Cloud-Load header). */
export const nodeLoadSchema = z
  .object({
    node: z.string().min(1).max(128),
    /** when it was measured, ms since epoch: an old report is unknown, not idle */
    ts: z.number().int().nonnegative(),
    inFlight: z.number().int().nonnegative(),
    /** event-loop utilisation, 0..1 */
    elu: z.number().min(0).max(1),
    /** CPU, % of one core */
    cpuPercent: z.number().min(0),
    /** database connections in use and requests waiting for one */
    dbConnections: z.number().int().nonnegative(),
    dbWaiting: z.number().int().nonnegative(),
  })
  .strict()
export type NodeLoad = z.infer<typeof nodeLoadSchema>

/** The seed's request classes. */
export type RequestClass = 'analytics' | 'database' | 'cache' | 'general'

export interface BalancerOptions {
  /** a load report older than this counts as unknown, ms */
  staleMs: number
  /** consecutive failures that eject a node (outlier ejection) */
  ejectAfterFailures: number
  /** how long an ejected node is left alone, ms */
  ejectMs: number
  /** when more than this fraction of the nodes is ejected, ejection is ignored (panic: all nodes) */
  maxEjectedFraction: number
  random?: () => number
  now?: () => number
}

export const balancerDefaults: BalancerOptions = {
  staleMs: 5_000,
  ejectAfterFailures: 3,
  ejectMs: 10_000,
  maxEjectedFraction: 0.5,
}

export interface Upstream {
  name: string
  url: string
  /** requests this balancer has sent and not yet seen answered */
  outstanding: number
  load: NodeLoad | null
  failures: number
  ejectedUntil: number
}

/**
 * Load-aware choice of a node, per request class:
 * - analytics: the least CPU; database work: the fewest database connections (in use + waiting);
 *   cache and general: least outstanding requests of two chosen at random (power of two choices);
 * - a node whose last report is stale is unknown, not idle: metric-based classes pick among fresh
 *   reports and fall back to two random choices when there are none;
 * - outlier ejection: consecutive failures take a node out for a while; if too many nodes are out,
 *   ejection is ignored rather than sending everything to the few left (Envoy's panic threshold).
 */
export class Balancer {
  private readonly ups = new Map<string, Upstream>()
  private readonly o: BalancerOptions
  private readonly now: () => number
  private readonly random: () => number

  constructor(opts: Partial<BalancerOptions> = {}) {
    this.o = { ...balancerDefaults, ...opts }
    this.now = this.o.now ?? Date.now
    this.random = this.o.random ?? Math.random
  }

  add(name: string, url: string): Upstream {
    let u = this.ups.get(name)
    if (!u) {
      u = { name, url, outstanding: 0, load: null, failures: 0, ejectedUntil: 0 }
      this.ups.set(name, u)
    }
    return u
  }

  get upstreams(): Upstream[] {
    return [...this.ups.values()]
  }

  report(name: string, load: NodeLoad): void {
    const u = this.ups.get(name)
    if (u) u.load = load
  }

  isFresh(u: Upstream): boolean {
    return u.load !== null && this.now() - u.load.ts <= this.o.staleMs
  }

  isEjected(u: Upstream): boolean {
    return u.ejectedUntil > this.now()
  }

  /** Choose a node for a request of this class; null when there is none at all. */
  pick(cls: RequestClass): Upstream | null {
    const all = this.upstreams
    if (all.length === 0) return null
    const inService = all.filter((u) => !this.isEjected(u))
    const panic =
      inService.length === 0 || (all.length - inService.length) / all.length > this.o.maxEjectedFraction
    // in panic, nodes that still answer the load poll (a fresh report) before the ones that do not:
    // ejections by 5xx are ignored, a node that is down is not
    const answering = all.filter((u) => this.isFresh(u))
    const pool = panic ? (answering.length > 0 ? answering : all) : inService
    const fresh = pool.filter((u) => this.isFresh(u))
    if (cls === 'analytics' && fresh.length > 0)
      return minBy(fresh, (u) => (u.load as NodeLoad).cpuPercent + u.outstanding * 0.01)
    if (cls === 'database' && fresh.length > 0)
      return minBy(fresh, (u) => {
        const l = u.load as NodeLoad
        return l.dbConnections + l.dbWaiting + u.outstanding * 0.01
      })
    return this.twoChoices(fresh.length >= 2 ? fresh : pool)
  }

  /**
   * Count a request sent to `u`; call the result with the outcome when it is answered (null: no
   * verdict on the node, e.g. the client went away). Only the first call counts.
   */
  begin(u: Upstream): (ok: boolean | null) => void {
    u.outstanding++
    let done = false
    return (ok) => {
      if (done) return
      done = true
      u.outstanding--
      if (ok === null) return
      if (ok) u.failures = 0
      else if (++u.failures >= this.o.ejectAfterFailures) {
        u.ejectedUntil = this.now() + this.o.ejectMs
        u.failures = 0
      }
    }
  }

  private twoChoices(xs: Upstream[]): Upstream {
    if (xs.length === 1) return xs[0] as Upstream
    const i = Math.floor(this.random() * xs.length)
    let j = Math.floor(this.random() * (xs.length - 1))
    if (j >= i) j++
    const a = xs[i] as Upstream
    const b = xs[j] as Upstream
    const score = (u: Upstream) =>
      u.outstanding + (this.isFresh(u) ? (u.load as NodeLoad).inFlight * 0.001 : 0)
    return score(b) < score(a) ? b : a
  }
}

function minBy<T>(xs: T[], f: (x: T) => number): T {
  let best = xs[0] as T
  let bv = f(best)
  for (const x of xs.slice(1)) {
    const v = f(x)
    if (v < bv) {
      best = x
      bv = v
    }
  }
  return best
}

/** The class of a request to gate-cloud, from its path. */
export function classify(method: string, path: string): RequestClass {
  if (path.startsWith('/v1/query/') || path.startsWith('/v1/perf') || path.startsWith('/v1/incidents'))
    return 'analytics'
  if (path.startsWith('/v1/sync/') || method !== 'GET') return 'database'
  if (path.startsWith('/v1/roster')) return 'cache'
  return 'general'
}

/** The load header a node adds to gates' answers: compact, `inFlight=3;elu=0.41;cpu=37.5;db=4;wait=0;ts=...`. */
export function formatLoadHeader(l: NodeLoad): string {
  return `node=${encodeURIComponent(l.node)};inFlight=${l.inFlight};elu=${l.elu.toFixed(3)};cpu=${l.cpuPercent.toFixed(1)};db=${l.dbConnections};wait=${l.dbWaiting};ts=${l.ts}`
}

export function parseLoadHeader(h: string | null | undefined): NodeLoad | null {
  if (!h || h.length > 512) return null
  const kv = new Map<string, string>()
  for (const part of h.split(';')) {
    const i = part.indexOf('=')
    if (i > 0) kv.set(part.slice(0, i).trim(), part.slice(i + 1).trim())
  }
  let node: string
  try {
    node = decodeURIComponent(kv.get('node') ?? '')
  } catch {
    return null
  }
  const r = nodeLoadSchema.safeParse({
    node,
    ts: Number(kv.get('ts')),
    inFlight: Number(kv.get('inFlight')),
    elu: Number(kv.get('elu')),
    cpuPercent: Number(kv.get('cpu')),
    dbConnections: Number(kv.get('db')),
    dbWaiting: Number(kv.get('wait')),
  })
  return r.success ? r.data : null
}
