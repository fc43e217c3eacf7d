import type { FastifyInstance, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { acknowledgeIncident, resolveIncident } from '../../incidents/handling.js'
import { parseInput } from '../input.js'
import { requireAccess } from '../plugins/app/people-auth.js'
import { mustSeeIncident } from '../scope.js'

const IncidentParams = z.object({ id: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER) })
const AcknowledgeBody = z
  .object({ note: z.string().trim().min(1).max(2000).optional() })
  .strict()
  .default({})
const ResolveBody = z.object({ note: z.string().trim().min(1, 'say what was done').max(2000) }).strict()

/** Who acted, as the incident keeps it: the login (or "ops token"), from where. */
const actor = (req: FastifyRequest) => `${req.principal?.actor ?? 'unknown'} from ${req.ip}`

/**
 * Handling incidents (ops, and the organisers of the incident's event; kept in the audit trail):
 * - POST /v1/incidents/:id/acknowledge `{note?}`: someone is on it;
 * - POST /v1/incidents/:id/resolve `{note}`: resolved, with what was done.
 * Both answer the incident as it now is; 404 for an unknown id.
 */
export async function incidentRoutes(app: FastifyInstance): Promise<void> {
  const { pool } = app
  // ops, and the organisers of the incident's event (its gate's)
  requireAccess(app, 'event-write')
  app.post('/v1/incidents/:id/acknowledge', async (req) => {
    const { id } = parseInput(IncidentParams, req.params)
    const { note } = parseInput(AcknowledgeBody, req.body ?? {})
    const eventId = await mustSeeIncident(pool, req.principal, id)
    const incident = await acknowledgeIncident(pool, id, actor(req), note ?? null)
    await app.audit(req, 'incident.acknowledge', { eventId, target: String(id) })
    return { incident }
  })
  app.post('/v1/incidents/:id/resolve', async (req) => {
    const { id } = parseInput(IncidentParams, req.params)
    const { note } = parseInput(ResolveBody, req.body)
    const eventId = await mustSeeIncident(pool, req.principal, id)
    const incident = await resolveIncident(pool, id, actor(req), note)
    await app.audit(req, 'incident.resolve', { eventId, target: String(id), detail: { note } })
    return { incident }
  })
}
