import type { FastifyInstance, FastifyRequest } from 'fastify'
import { GateError } from '../../shared/errors.js'
import type { FleetMonitor } from '../fleet/monitor.js'

/** /v1/fleet and /v1/fleet/:gateId: every gate's state, last seen and last metrics (ops token). */
export async function fleetRoutes(
  app: FastifyInstance,
  opts: { fleet: FleetMonitor | null; opsAuth: (req: FastifyRequest) => Promise<void> },
): Promise<void> {
  app.addHook('preHandler', opts.opsAuth)
  const need = () => {
    if (!opts.fleet)
      throw new GateError('E_NOT_FOUND', 'the fleet monitor is off: set MQTT_URL on the service')
    return opts.fleet
  }
  app.get('/v1/fleet', async () => {
    const f = need()
    const gates = f.list()
    return {
      counts: {
        online: gates.filter((g) => g.state === 'online').length,
        stale: gates.filter((g) => g.state === 'stale').length,
        offline: gates.filter((g) => g.state === 'offline').length,
      },
      gates,
      messages: f.stats,
    }
  })
  app.get('/v1/fleet/:gateId', async (req) => {
    const { gateId } = req.params as { gateId: string }
    const g = need().get(gateId)
    if (!g) throw new GateError('E_NOT_FOUND', `no gate ${gateId} has reported`)
    return g
  })
}
