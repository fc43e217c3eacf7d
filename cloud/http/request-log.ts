import { type FastifyBaseLogger, type FastifyReply, type FastifyRequest, LogController } from 'fastify'
import type { Logger } from 'pino'

const REDACTED = '[redacted]'
// a parameter's name is kept when it looks like one (since, limit, key, token...); anything longer
// or odder may itself be a secret sent as `?<secret>`, and goes like the values
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,19}$/

/**
 * A URL (or request target) fit for a log: `user:password@` and every query value replaced by
 * `[redacted]`. The ops token and gate keys can arrive as `?token=` or `?key=` from a client that
 * puts them in the URL, and the log must not keep them; the path and the parameters' names stay.
 */
export function redactUrl(url: string): string {
  const out = url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i, `$1${REDACTED}@`)
  const q = out.indexOf('?')
  if (q < 0) return out
  const params = out
    .slice(q + 1)
    .split('&')
    .map((p) => {
      const eq = p.indexOf('=')
      const name = eq < 0 ? '' : p.slice(0, eq)
      return PARAM_NAME.test(name) ? `${name}=${REDACTED}` : REDACTED
    })
  return `${out.slice(0, q)}?${params.join('&')}`
}

/** Fastify's `req` serializer, with the URL redacted. */
function reqSerializer(req: FastifyRequest): Record<string, unknown> {
  return {
    method: req.method,
    url: redactUrl(req.url),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  }
}

/** Fastify's request log lines, with the URL of a route not found redacted too. */
class RedactingLogController extends LogController {
  override routeNotFound(request: FastifyRequest, _reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return
    request.log.info(`Route ${request.raw.method}:${redactUrl(request.raw.url ?? '')} not found`)
  }
}

/**
 * The logging options of a Fastify app (the cloud's and the router's): its logger with a `req`
 * serializer that redacts query strings (and `source`, the target @fastify/reply-from logs when it
 * proxies), and a log controller that does the same for a 404.
 */
export function requestLogging(log: Logger): {
  loggerInstance: FastifyBaseLogger
  logController: LogController
} {
  const serializers = {
    req: reqSerializer,
    source: (v: unknown) => (typeof v === 'string' ? redactUrl(v) : v),
  }
  return {
    loggerInstance: log.child({}, { serializers }) as FastifyBaseLogger,
    logController: new RedactingLogController(),
  }
}
