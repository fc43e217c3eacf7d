import { promisify } from 'node:util'
import { gzip as gzipCb } from 'node:zlib'
import type { GateTally } from '../../shared/access/occupancy.js'
import { type AccessPolicy, parsePolicy } from '../../shared/access/policy.js'
import { errorMessage } from '../../shared/errors.js'
import {
  Balancer,
  type NodeLoad,
  parseLoadHeader,
  type RequestClass,
  type Upstream,
} from '../../shared/load-balancer.js'
import {
  type OccupancyAnswer,
  occupancyAnswerSchema,
  type RosterDelta,
  rosterDeltaSchema,
  type SyncResult,
  syncResultSchema,
} from '../../shared/sync.js'
import type { AgentConfig } from '../config/schema.js'

/** How a call to the cloud ended, in the terms the syncer acts on. */
export type CloudOutcome<T> =
  | { ok: true; value: T }
  /** try again later: network, timeout, 429, 5xx; `retryAfterMs` from the Retry-After header */
  | { ok: false; kind: 'retry'; message: string; retryAfterMs?: number }
  /** the key is wrong or revoked: retrying soon will not help */
  | { ok: false; kind: 'auth'; message: string }
  /** the batch is too large for the cloud: send fewer records */
  | { ok: false; kind: 'too-large'; message: string }
  /**
   * the cloud refuses this batch as it is (400: malformed); `problems` name the records at fault
   * by their index in the batch when the cloud said which
   */
  | { ok: false; kind: 'refused'; status: number; message: string; problems: RecordProblem[] }

/** What the cloud found wrong with one record of a refused batch. */
export interface RecordProblem {
  index: number
  message: string
}

/** The records at fault named in a 400's body (`error.details[].index`), if any. */
function recordProblems(text: string): RecordProblem[] {
  try {
    const details = (JSON.parse(text) as { error?: { details?: unknown } }).error?.details
    if (!Array.isArray(details)) return []
    const out: RecordProblem[] = []
    for (const detail of details as Array<{ index?: unknown; path?: unknown; message?: unknown }>) {
      if (typeof detail?.index !== 'number' || !Number.isInteger(detail.index) || detail.index < 0) continue
      const where = typeof detail.path === 'string' && detail.path !== '' ? `${detail.path}: ` : ''
      out.push({
        index: detail.index,
        message: `${where}${String(detail.message ?? 'invalid')}`.slice(0, 200),
      })
    }
    return out
  } catch {
    return []
  }
}

/**
 * The port the syncer and roster puller talk to; tests may pass their own. A call never throws:
 * every failure is an outcome that says what to do next.
 */
export interface CloudClient {
  /**
   * Upload check-ins of `gateId`, sent at `sentAt` (the gate's wall clock, ms since the epoch).
   * `recordsJson`: a JSON array of check-ins, text or UTF-8 (the outbox renders it; nothing is
   * parsed to send it). The result names every id the cloud holds (stored now or before) and the
   * records it refuses for good; a 422 (all refused) is a result too.
   */
  sendBatch(
    gateId: string,
    sentAt: number,
    recordsJson: string | Uint8Array,
  ): Promise<CloudOutcome<SyncResult>>
  /**
   * The roster changes after `since` (the cursor of the last change applied; 0 for all), with the
   * ETag of the answer. `etag`: the one last received, or null; `delta` is null when the cloud
   * answered 304 (nothing after `since`), the ETag then the one passed.
   */
  fetchRoster(
    since: number,
    etag: string | null,
  ): Promise<CloudOutcome<{ delta: RosterDelta | null; etag: string | null }>>
  /**
   * The access policy of the gate's event (`policy` null: none), checked against the schema; with
   * `etag` the one last received, `changed` is false when it is still current (304).
   */
  fetchPolicy(
    etag: string | null,
  ): Promise<CloudOutcome<{ changed: boolean; policy: AccessPolicy | null; etag: string | null }>>
  /** Report this gate's tallies by zone; the answer carries its allotments and the zones' occupancy. */
  sendTallies(tallies: Record<string, GateTally>): Promise<CloudOutcome<OccupancyAnswer>>
}

/** Compression runs on libuv's thread pool, not on the event loop that makes decisions. */
const gzip = promisify(gzipCb)

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(header)
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined
}

/** gate-cloud over HTTP (Node's fetch), gzip bodies, a timeout on every call. The key is never logged. */
export class HttpCloudClient implements CloudClient {
  private readonly base: string

  constructor(
    url: string,
    private readonly gateKey: string,
    private readonly timeoutMs = 15_000,
    /** told of the load the node reports on each answer (X-Gate-Cloud-Load) */
    private readonly onLoad?: (load: NodeLoad) => void,
  ) {
    this.base = url.replace(/\/+$/, '')
  }

  async sendBatch(
    gateId: string,
    sentAt: number,
    recordsJson: string | Uint8Array,
  ): Promise<CloudOutcome<SyncResult>> {
    const head = `{"gateId":${JSON.stringify(gateId)},"sentAt":${sentAt},"records":`
    const body = await gzip(
      typeof recordsJson === 'string'
        ? `${head}${recordsJson}}`
        : Buffer.concat([Buffer.from(head), recordsJson, Buffer.from('}')]),
    )
    return this.call(
      'POST',
      '/v1/sync/checkins',
      { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body,
      async (res) => {
        if (res.status === 200 || res.status === 422) return syncResultSchema.parse(await res.json())
        return undefined
      },
    )
  }

  async fetchRoster(
    since: number,
    etag: string | null,
  ): Promise<CloudOutcome<{ delta: RosterDelta | null; etag: string | null }>> {
    return this.call(
      'GET',
      `/v1/roster?since=${since}&with=access`,
      etag ? { 'if-none-match': etag } : {},
      undefined,
      async (res) => {
        if (res.status === 304) return { delta: null, etag }
        if (res.status === 200)
          return { delta: rosterDeltaSchema.parse(await res.json()), etag: res.headers.get('etag') }
        return undefined
      },
    )
  }

  async fetchPolicy(
    etag: string | null,
  ): Promise<CloudOutcome<{ changed: boolean; policy: AccessPolicy | null; etag: string | null }>> {
    return this.call(
      'GET',
      '/v1/access-policy',
      etag ? { 'if-none-match': etag } : {},
      undefined,
      async (res) => {
        if (res.status === 304) return { changed: false, policy: null, etag }
        if (res.status !== 200) return undefined
        const body = (await res.json()) as { policy?: unknown }
        if (body.policy === null || body.policy === undefined)
          return { changed: true, policy: null, etag: res.headers.get('etag') }
        const parsed = parsePolicy(body.policy)
        // a policy this gate cannot read (a newer cloud's): kept out, the one in force stays
        if (!parsed.ok) throw new Error(`the cloud's access policy is refused: ${parsed.problems.join('; ')}`)
        return { changed: true, policy: parsed.policy, etag: res.headers.get('etag') }
      },
    )
  }

  async sendTallies(tallies: Record<string, GateTally>): Promise<CloudOutcome<OccupancyAnswer>> {
    return this.call(
      'POST',
      '/v1/sync/occupancy',
      { 'content-type': 'application/json' },
      Buffer.from(JSON.stringify({ tallies })),
      async (res) => (res.status === 200 ? occupancyAnswerSchema.parse(await res.json()) : undefined),
    )
  }

  private async call<T>(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    read: (res: Response) => Promise<T | undefined>,
  ): Promise<CloudOutcome<T>> {
    let res: Response
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.gateKey}`, ...headers },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      })
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code
      return { ok: false, kind: 'retry', message: `cloud unreachable: ${cause ?? errorMessage(err)}` }
    }
    if (this.onLoad) {
      const load = parseLoadHeader(res.headers.get('x-gate-cloud-load'))
      if (load) this.onLoad(load)
    }
    try {
      const value = await read(res)
      if (value !== undefined) return { ok: true, value }
    } catch (err) {
      return {
        ok: false,
        kind: 'retry',
        message: `unexpected answer from the cloud (${res.status}): ${errorMessage(err)}`,
      }
    }
    const text = await res.text().catch(() => '')
    const message = `${res.status} ${text.slice(0, 300)}`
    if (res.status === 401 || res.status === 403) return { ok: false, kind: 'auth', message }
    if (res.status === 413) return { ok: false, kind: 'too-large', message }
    if (res.status === 429 || res.status >= 500) {
      return { ok: false, kind: 'retry', message, retryAfterMs: retryAfterMs(res.headers.get('retry-after')) }
    }
    return {
      ok: false,
      kind: 'refused',
      status: res.status,
      message,
      problems: res.status === 400 ? recordProblems(text) : [],
    }
  }
}

/**
 * Several cloud endpoints (GATE_CLOUD_URL=http://a,http://b): each call goes to the endpoint the
 * load-aware balancer picks from the load each answer carries (uploads: the fewest database
 * connections; roster pulls: least outstanding of two), and a call that fails with a retryable
 * outcome (unreachable, 5xx, 429) is tried at once on another endpoint; endpoints that keep failing
 * are ejected for a while.
 */
export class MultiCloudClient implements CloudClient {
  private readonly balancer: Balancer
  private readonly clients = new Map<string, HttpCloudClient>()

  constructor(urls: readonly string[], gateKey: string, timeoutMs = 15_000, balancer = new Balancer()) {
    this.balancer = balancer
    for (const url of urls) {
      const name = url.replace(/\/+$/, '')
      this.balancer.add(name, name)
      this.clients.set(
        name,
        new HttpCloudClient(name, gateKey, timeoutMs, (l) => this.balancer.report(name, l)),
      )
    }
  }

  /** The endpoints and what is known of them (for gatectl sync). */
  get endpoints(): Upstream[] {
    return this.balancer.upstreams
  }

  sendBatch(
    gateId: string,
    sentAt: number,
    recordsJson: string | Uint8Array,
  ): Promise<CloudOutcome<SyncResult>> {
    return this.withFailover('database', (c) => c.sendBatch(gateId, sentAt, recordsJson))
  }

  fetchRoster(
    since: number,
    etag: string | null,
  ): Promise<CloudOutcome<{ delta: RosterDelta | null; etag: string | null }>> {
    return this.withFailover('cache', (c) => c.fetchRoster(since, etag))
  }

  fetchPolicy(
    etag: string | null,
  ): Promise<CloudOutcome<{ changed: boolean; policy: AccessPolicy | null; etag: string | null }>> {
    return this.withFailover('cache', (c) => c.fetchPolicy(etag))
  }

  sendTallies(tallies: Record<string, GateTally>): Promise<CloudOutcome<OccupancyAnswer>> {
    return this.withFailover('database', (c) => c.sendTallies(tallies))
  }

  private async withFailover<T>(
    cls: RequestClass,
    fn: (client: HttpCloudClient) => Promise<CloudOutcome<T>>,
  ): Promise<CloudOutcome<T>> {
    const tried = new Set<string>()
    let last: CloudOutcome<T> | null = null
    for (let i = 0; i < this.clients.size; i++) {
      const upstream = this.pickUntried(cls, tried)
      if (!upstream) break
      tried.add(upstream.name)
      const done = this.balancer.begin(upstream)
      const out = await fn(this.clients.get(upstream.name) as HttpCloudClient)
      done(out.ok || out.kind !== 'retry')
      if (out.ok || out.kind !== 'retry') return out
      last = out
    }
    return last ?? { ok: false, kind: 'retry', message: 'no cloud endpoint' }
  }

  private pickUntried(cls: RequestClass, tried: Set<string>): Upstream | null {
    for (let k = 0; k < 8; k++) {
      const upstream = this.balancer.pick(cls)
      if (upstream && !tried.has(upstream.name)) return upstream
    }
    return this.balancer.upstreams.find((u) => !tried.has(u.name)) ?? null
  }
}

/** The HTTP cloud client, when the gate has a cloud URL and a key (several URLs: the least loaded). */
export function cloudClientFor(config: AgentConfig): CloudClient | null {
  const { url, gateKey, timeoutMs } = config.cloud
  if (!url || !gateKey) return null
  const urls = url.split(',').map((u) => u.trim())
  return urls.length > 1
    ? new MultiCloudClient(urls, gateKey, timeoutMs)
    : new HttpCloudClient(url, gateKey, timeoutMs)
}
