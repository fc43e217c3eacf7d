import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { GateError, isGateError } from '../../../shared/errors.js'
import { COMMANDS } from '../../../shared/fleet.js'
import type { FleetMonitor } from '../../fleet/monitor.js'
import { parseInput } from '../input.js'
import { requireAccess } from '../plugins/app/people-auth.js'

const CommandBody = z
  .object({
    cmd: z.enum(COMMANDS),
    params: z.record(z.string(), z.unknown()).default({}),
    timeoutMs: z.number().int().min(100).max(60_000).default(10_000),
  })
  .strict()

/**
 * /v1/fleet and /v1/fleet/:gateId: every gate's state, last seen and last metrics (ops and
 * technicians); POST /v1/fleet/:gateId/commands: a signed command to a gate (kept in the audit trail).
 */
export async function fleetRoutes(
  app: FastifyInstance,
  opts: {
    /** the fleet over MQTT (MQTT_URL); null: these routes answer that it is off */
    fleet: FleetMonitor | null
  },
): Promise<void> {
  // the secret the gates verify commands with (FLEET_COMMAND_SECRET); unset: commands off
  const commandSecret = app.config.fleet.commandSecret
  requireAccess(app, 'fleet-read')
  const need = () => {
    if (!opts.fleet)
      throw new GateError('E_NOT_FOUND', 'the fleet monitor is off: set MQTT_URL on the service')
    return opts.fleet
  }
  app.get('/v1/fleet', async () => {
    const f = need()
    const gates = await f.fleet()
    return {
      counts: {
        online: gates.filter((g) => g.state === 'online').length,
        stale: gates.filter((g) => g.state === 'stale').length,
        offline: gates.filter((g) => g.state === 'offline').length,
      },
      gates,
      messages: f.stats,
      // heard on a topic but not in the gates table: kept apart, for ops to find (not registered? a typo?)
      unknownGates: f.unknownGates(),
    }
  })
  // a command to one gate, signed here, answered by the gate (or 504 when it does not answer)
  app.post('/v1/fleet/:gateId/commands', { config: { access: 'fleet-command' } }, async (req, reply) => {
    const { gateId } = req.params as { gateId: string }
    const body = parseInput(CommandBody, req.body)
    if (!commandSecret) throw new GateError('E_FORBIDDEN', 'commands are off: set FLEET_COMMAND_SECRET')
    const f = need()
    const audit = (outcome: 'done' | 'failed', detail: Record<string, unknown>) =>
      app.audit(req, 'gate.command', { target: gateId, outcome, detail: { cmd: body.cmd, ...detail } })
    try {
      const answer = await f.command(gateId, body.cmd, body.params, commandSecret, body.timeoutMs)
      await audit('done', {})
      return answer
    } catch (err) {
      if (isGateError(err)) throw err // not a gate id: 400
      await audit('failed', { why: (err as Error).message })
      return reply.status(504).send({ error: { code: 'E_NO_ANSWER', message: (err as Error).message } })
    }
  })
  app.get('/v1/fleet/:gateId', async (req) => {
    const { gateId } = req.params as { gateId: string }
    const f = need()
    const g = f.get(gateId) ?? (await f.fleet()).find((x) => x.gateId === gateId) ?? null
    if (!g) throw new GateError('E_NOT_FOUND', `no gate ${gateId} has reported`)
    return g
  })
}
