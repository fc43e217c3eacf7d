import type { FastifyRequest } from 'fastify'

/** The bearer token of a request (`Authorization: Bearer ...`), or null. */
export function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization
  if (!h) return null
  const m = /^Bearer\s+(\S+)$/i.exec(h)
  return m?.[1] ?? null
}
