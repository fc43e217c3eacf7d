import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { GateError } from '../../../shared/errors.js'
import { reportTallies, tallyReportSchema, zoneOccupancy } from '../../access/occupancy.js'
import { currentPolicy, putPolicy } from '../../access/policies.js'
import { whatIf, whatIfSchema } from '../../access/what-if.js'
import type { GateIdentity } from '../../gates/store.js'
import { parseInput } from '../input.js'
import { gateRouteOptions } from '../plugins/app/gate-auth.js'
import { requireAccess } from '../plugins/app/people-auth.js'

const EventParams = z.object({ eventId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/) })

/**
 * The access policy of an event (shared/access/policy.ts):
 * - PUT /v1/events/:eventId/access-policy (ops token): store the next version; 400 naming every
 *   problem when the schema refuses it.
 * - GET /v1/events/:eventId/access-policy (ops token): the version in force (404 if none).
 * - GET /v1/access-policy (gate key): the policy of the gate's event, `{ policy: null }` if none;
 *   304 for a gate that has that version already (ETag).
 * - POST /v1/sync/occupancy (gate key): the gate's tallies by zone, merged; answered with its
 *   allotments of the zones it lets people into and the zones' occupancy.
 * - POST /v1/events/:eventId/access-policy/evaluate (ops token): would this participant pass this
 *   gate (now, or at a time)? The gates' engine, run here.
 * - GET /v1/query/events/:eventId/occupancy (ops token): every zone's occupancy, capacity, and each
 *   gate's entries, exits and allotment.
 */
export async function accessRoutes(app: FastifyInstance): Promise<void> {
  const { pool } = app

  app.get('/v1/access-policy', gateRouteOptions(app), async (req, reply) => {
    const { eventId } = req.gate as GateIdentity
    const policy = eventId === null ? null : await currentPolicy(pool, eventId)
    const etag = `"policy-${policy?.version ?? 0}"`
    reply.header('ETag', etag).header('Cache-Control', 'no-cache')
    if (req.headers['if-none-match'] === etag) return reply.status(304).send()
    return { policy }
  })

  app.post('/v1/sync/occupancy', gateRouteOptions(app), async (req) => {
    const { gateId, eventId } = req.gate as GateIdentity
    const report = parseInput(tallyReportSchema, req.body)
    if (eventId === null) return { policyVersion: 0, allotments: {}, occupancy: {} }
    return reportTallies(pool, eventId, gateId, report, Date.now())
  })

  await app.register(async (ops) => {
    // an event's organisers read and write its policy; ops any event's
    requireAccess(ops, 'event-read')
    ops.put('/v1/events/:eventId/access-policy', { config: { access: 'event-write' } }, async (req) => {
      const { eventId } = parseInput(EventParams, req.params)
      const policy = await putPolicy(pool, eventId, req.body)
      await app.audit(req, 'policy.publish', { eventId, detail: { version: policy.version } })
      return { policy }
    })
    ops.get('/v1/events/:eventId/access-policy', async (req) => {
      const { eventId } = parseInput(EventParams, req.params)
      const policy = await currentPolicy(pool, eventId)
      if (policy === null) throw new GateError('E_NOT_FOUND', `event ${eventId} has no access policy`)
      return { policy }
    })
    ops.post('/v1/events/:eventId/access-policy/evaluate', async (req) => {
      const { eventId } = parseInput(EventParams, req.params)
      return whatIf(pool, eventId, parseInput(whatIfSchema, req.body), Date.now())
    })
    ops.get('/v1/query/events/:eventId/occupancy', async (req) => {
      const { eventId } = parseInput(EventParams, req.params)
      const zones = await zoneOccupancy(pool, eventId, Date.now())
      if (zones === null) throw new GateError('E_NOT_FOUND', `event ${eventId} has no access policy`)
      return { eventId, zones }
    })
  })
}
