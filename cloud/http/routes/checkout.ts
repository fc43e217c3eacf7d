import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { GateError, isGateError } from '../../../shared/errors.js'
import { currentPolicy } from '../../access/policies.js'
import type { FleetMonitor } from '../../fleet/monitor.js'
import { parseInput } from '../input.js'
import { requireAccess } from '../plugins/app/people-auth.js'

const Params = z.object({
  eventId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/),
  id: z.string().min(1).max(128),
})
const Body = z
  .object({
    note: z.string().trim().min(1, 'say why').max(300),
    /** the gate that records it (default: an online gate of the event whose lane enters a zone) */
    gateId: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/)
      .optional(),
  })
  .strict()

/**
 * POST /v1/events/:eventId/participants/:id/check-out `{note, gateId?}`: check a participant out
 * by hand (they left without passing a gate: an emergency exit, a badge that was not read). The
 * gates own occupancy and anti-passback, so the check-out is made by one of them: the cloud sends
 * it a signed `checkout` command, and that gate records a passage out of its lane's zone (by hand,
 * with who and why, opening nothing), counts the exit, tells the venue's other gates over their
 * broker and syncs it like any check-in. Answers `{gateId, checkin}`; 409 when no gate of the event
 * with a lane into a zone is online, or the gate refuses; 504 when it does not answer.
 */
export async function checkoutRoutes(
  app: FastifyInstance,
  opts: { fleet: FleetMonitor | null },
): Promise<void> {
  const { pool } = app
  requireAccess(app, 'event-write')
  app.post('/v1/events/:eventId/participants/:id/check-out', async (req, reply) => {
    const { eventId, id } = parseInput(Params, req.params)
    const { note, gateId } = parseInput(Body, req.body)
    const fleet = opts.fleet
    const secret = app.config.fleet.commandSecret
    if (!fleet || !secret)
      throw new GateError(
        'E_NOT_FOUND',
        'check-outs are made by a gate: the service needs MQTT_URL and FLEET_COMMAND_SECRET',
      )
    const who = await pool.query<{ token: string }>(
      'SELECT token FROM participants WHERE event_id = $1 AND id = $2',
      [eventId, id],
    )
    const token = who.rows[0]?.token
    if (token === undefined) throw new GateError('E_NOT_FOUND', `no participant ${id} in event ${eventId}`)
    const gate = await choose(pool, fleet, eventId, gateId ?? null)
    const answer = await fleet
      .command(gate, 'checkout', { token, actor: req.principal?.actor ?? 'unknown', note }, secret)
      .catch((err: Error) => {
        if (isGateError(err)) throw err
        return null
      })
    const audit = (outcome: 'done' | 'failed', detail: Record<string, unknown>) =>
      app.audit(req, 'participant.checkout', {
        eventId,
        target: id,
        outcome,
        detail: { gateId: gate, note, ...detail },
      })
    if (answer === null) {
      await audit('failed', { why: 'no answer' })
      return reply
        .status(504)
        .send({ error: { code: 'E_NO_ANSWER', message: `gate ${gate} did not answer` } })
    }
    if (!answer.ok) {
      await audit('failed', { why: answer.error })
      throw new GateError(
        'E_CONFLICT',
        `gate ${gate} refused the check-out: ${answer.error ?? 'no reason given'}`,
      )
    }
    await audit('done', {})
    return { gateId: gate, checkin: answer.result }
  })
}

/** The gate to check out at: the one asked for (of this event), else an online one whose lane enters a zone. */
async function choose(
  pool: FastifyInstance['pool'],
  fleet: FleetMonitor,
  eventId: string,
  asked: string | null,
): Promise<string> {
  const gates = await pool.query<{ id: string }>('SELECT id FROM gates WHERE event_id = $1', [eventId])
  const ofEvent = new Set(gates.rows.map((g) => g.id))
  if (asked !== null) {
    if (!ofEvent.has(asked)) throw new GateError('E_NOT_FOUND', `no gate ${asked} in event ${eventId}`)
    return asked
  }
  const policy = await currentPolicy(pool, eventId)
  const entering = new Set((policy?.lanes ?? []).filter((l) => l.to !== null).map((l) => l.gate))
  const online = (await fleet.fleet()).filter((g) => g.state === 'online' && ofEvent.has(g.gateId))
  const gate = online.find((g) => entering.has(g.gateId))
  if (!gate)
    throw new GateError(
      'E_CONFLICT',
      `no gate of event ${eventId} whose lane enters a zone is online to record it`,
    )
  return gate.gateId
}
