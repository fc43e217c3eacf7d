import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { GateError } from '../../shared/errors.js'
import { isDbUnavailable } from '../db/errors.js'

const STATUS: Record<string, number> = {
  E_INPUT: 400,
  E_CONFIG_INVALID: 400,
  E_AUTH: 401,
  E_FORBIDDEN: 403,
  E_NOT_FOUND: 404,
  E_CONFLICT: 409,
  E_RATE_LIMITED: 429,
  E_DB_UNAVAILABLE: 503,
}

/** One place maps every error to HTTP: coded errors keep their message, 5xx internals are hidden. */
export function errorHandler(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): void {
  // refused before its body was read (a bad key, a limit): the connection is closed after the
  // answer rather than kept alive, which would mean reading the whole body (a slow one for minutes)
  if (!req.raw.complete) reply.header('Connection', 'close')
  if (err instanceof GateError) {
    const status = STATUS[err.code] ?? 500
    if (status === 503) reply.header('Retry-After', '5')
    if (status === 429) reply.header('Retry-After', String(err.context['retryAfterS'] ?? 60))
    const body: { error: { code: string; message: string; details?: unknown } } = {
      error: { code: err.code, message: err.message },
    }
    if (err.context['problems']) body.error.details = err.context['problems']
    if (status >= 500) req.log.error({ err }, 'request failed')
    reply.status(status).send(body)
    return
  }
  // the client went away while its request was read (a reset or a closed connection mid-body): the
  // ECONNRESET is the client's, not the database's, and there is no one left to answer
  if (!req.raw.complete && req.raw.destroyed) {
    req.log.info({ err: err.message }, 'client went away before its request was read')
    reply.status(400).send({ error: { code: 'E_INPUT', message: 'the request was cut off' } })
    return
  }
  if (isDbUnavailable(err)) {
    req.log.warn({ err: err.message }, 'database unavailable')
    reply
      .status(503)
      .header('Retry-After', '5')
      .send({ error: { code: 'E_DB_UNAVAILABLE', message: 'the database is unavailable; retry later' } })
    return
  }
  const pgCode = (err as { code?: unknown }).code
  if (
    typeof pgCode === 'string' &&
    /^22[0-9A-Z]{3}$/.test(pgCode) &&
    (err as { severity?: unknown }).severity
  ) {
    // Postgres' data exceptions (class 22: a value out of range, bad encoding): the request's
    // fault, and retrying it will not help. The code, not Postgres' text, is sent back.
    req.log.warn({ err: err.message, code: pgCode }, 'a value of the request cannot be stored')
    reply.status(400).send({
      error: {
        code: 'E_INPUT',
        message: `a value of the request cannot be stored (Postgres data error ${pgCode})`,
      },
    })
    return
  }
  const fe = err as FastifyError
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code =
      fe.statusCode === 413
        ? 'E_PAYLOAD_TOO_LARGE'
        : fe.statusCode === 415
          ? 'E_UNSUPPORTED_MEDIA'
          : fe.statusCode === 429
            ? 'E_RATE_LIMITED'
            : 'E_INPUT'
    reply.status(fe.statusCode).send({ error: { code, message: fe.message } })
    return
  }
  req.log.error({ err }, 'unexpected error')
  reply.status(500).send({ error: { code: 'E_INTERNAL', message: 'internal error' } })
}
