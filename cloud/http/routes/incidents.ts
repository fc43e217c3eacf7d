import type { FastifyInstance, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { acknowledgeIncident, resolveIncident } from '../../incidents/handling.js'
import { parseInput } from '../input.js'

const IncidentParams = z.object({ id: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER) })
const AcknowledgeBody = z
  .object({ note: z.string().trim().min(1).max(2000).optional() })
  .strict()
  .default({})
const ResolveBody = z.object({ note: z.string().trim().min(1, 'say what was done').max(2000) }).strict()

/** Who acted: the holder of the ops token, from where (people's own accounts will name them). */
const actor = (req: FastifyRequest) => `ops token from ${req.ip}`

/**
 * Handling incidents (ops token):
 * - POST /v1/incidents/:id/acknowledge `{note?}`: someone is on it;
 * - POST /v1/incidents/:id/resolve `{note}`: resolved, with what was done.
 * Both answer the incident as it now is; 404 for an unknown id.
 */
export async function incidentRoutes(app: FastifyInstance): Promise<void> {
  const { pool } = app
  app.addHook('onRequest', app.authenticateOps)
  app.post('/v1/incidents/:id/acknowledge', async (req) => {
    const { id } = parseInput(IncidentParams, req.params)
    const { note } = parseInput(AcknowledgeBody, req.body ?? {})
    return { incident: await acknowledgeIncident(pool, id, actor(req), note ?? null) }
  })
  app.post('/v1/incidents/:id/resolve', async (req) => {
    const { id } = parseInput(IncidentParams, req.params)
    const { note } = parseInput(ResolveBody, req.body)
    return { incident: await resolveIncident(pool, id, actor(req), note) }
  })
}
