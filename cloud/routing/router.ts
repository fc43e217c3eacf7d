import replyFrom from '@fastify/reply-from'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import {
  Balancer,
  type BalancerOptions,
  classify,
  nodeLoadSchema,
  parseLoadHeader,
} from '../../shared/load-balancer.js'
import { requestLogging } from '../http/request-log.js'

export interface RouterOptions {
  backends: readonly string[]
  log: Logger
  /** how often each backend's GET /v1/load is polled (its health check and load report), ms */
  pollMs: number
  balancer?: Partial<BalancerOptions>
  /** request body limit, bytes (the backends apply their own) */
  bodyLimit?: number
  /** a request not received in full within this time is cut with 408, ms (the nodes' default, 60 s) */
  requestTimeoutMs?: number
}

/**
 * `gate-cloud router`: an HTTP front for setups without an L7 balancer. Each request is classified
 * (analytics, database, cache, general) and sent to the node the balancer picks from the loads the
 * nodes report; the body is streamed (@fastify/reply-from on undici), a 5xx or a connection error
 * counts against the node (outlier ejection), and a node failing its load poll is ejected the same way.
 */
export async function buildRouter(o: RouterOptions): Promise<{ app: FastifyInstance; balancer: Balancer }> {
  if (o.backends.length === 0) throw new Error('no backends')
  const balancer = new Balancer(o.balancer)
  const names = new Map<string, string>()
  for (const url of o.backends) {
    const u = new URL(url)
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`backend ${url}: http(s) only`)
    const base = u.origin
    balancer.add(base, base)
    names.set(base, base)
  }
  const requestTimeoutMs = o.requestTimeoutMs ?? 60_000
  const app = Fastify({
    ...requestLogging(o.log), // query strings redacted from the request lines
    bodyLimit: o.bodyLimit ?? 16 * 1024 * 1024,
    // as on the nodes: a body trickled a byte at a time does not hold a connection for minutes
    requestTimeout: requestTimeoutMs,
    connectionTimeout: 120_000,
    http: {
      headersTimeout: Math.min(60_000, requestTimeoutMs),
      connectionsCheckingInterval: Math.min(5_000, Math.max(250, requestTimeoutMs / 4)),
    },
  })
  // the router streams bodies as they are: no parsing, any content type
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload))
  // no `base`: with one, reply-from sends every request to that origin whatever getUpstream says
  // an upstream that accepts a request and never answers fails it after 15 s (undici's default is 300)
  await app.register(replyFrom, {
    undici: { connections: 64, pipelining: 1, headersTimeout: 15_000, bodyTimeout: 15_000 },
  })

  const poll = async () => {
    await Promise.all(
      balancer.upstreams.map(async (u) => {
        const done = balancer.begin(u)
        try {
          const res = await fetch(`${u.url}/v1/load`, {
            signal: AbortSignal.timeout(Math.max(500, o.pollMs)),
          })
          const body = nodeLoadSchema.safeParse(await res.json())
          if (!res.ok || !body.success) throw new Error(`load answer ${res.status}`)
          balancer.report(u.name, body.data)
          done(true)
        } catch {
          done(false)
        }
      }),
    )
  }
  await poll()
  const timer = setInterval(() => void poll(), o.pollMs)
  timer.unref()
  app.addHook('onClose', async () => clearInterval(timer))

  app.get('/router/status', async () => ({
    upstreams: balancer.upstreams.map((u) => ({
      url: u.url,
      outstanding: u.outstanding,
      ejected: balancer.isEjected(u),
      fresh: balancer.isFresh(u),
      load: u.load,
    })),
  }))

  // only origin-form targets (`GET /path`) are proxied: an absolute-form one (`GET http://host/...`,
  // meant for a forward proxy) or `*` is the client's mistake, answered 400 before any upstream is chosen
  app.addHook('onRequest', async (req, reply) => {
    if (req.url.startsWith('/')) return
    return reply.status(400).send({
      error: { code: 'E_INPUT', message: 'the request target must be a path (/...), not an absolute URL' },
    })
  })

  app.all('/*', (req, reply) => {
    const cls = classify(req.method, req.url)
    const u = balancer.pick(cls)
    if (!u) {
      reply
        .status(503)
        .header('Retry-After', '5')
        .send({ error: { code: 'E_NO_BACKEND', message: 'no node' } })
      return
    }
    const done = balancer.begin(u)
    // a client that goes away before the answer: no onResponse, so its count is released here
    reply.raw.once('close', () => done(null))
    reply.from(req.url, {
      getUpstream: () => u.url,
      // no retries on the same node (reply-from retries a GET answered 503 up to ten times, reading
      // Retry-After in ms): a node shedding load says so, and the 503 goes back to the client
      retryDelay: () => null,
      onResponse: (_req, rep, res) => {
        done(res.statusCode < 500)
        const l = parseLoadHeader(rep.getHeader('x-gate-cloud-load') as string | undefined)
        if (l) balancer.report(u.name, l)
        rep.send(res.stream)
      },
      onError: (rep, { error }) => {
        done(false)
        req.log.warn({ err: error.message, upstream: u.url }, 'upstream failed')
        rep
          .status(502)
          .header('Retry-After', '1')
          .send({ error: { code: 'E_UPSTREAM', message: 'the upstream node failed; retry' } })
      },
    })
  })
  return { app, balancer }
}
