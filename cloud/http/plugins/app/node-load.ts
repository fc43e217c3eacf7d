import os from 'node:os'
import fp from 'fastify-plugin'
import { formatLoadHeader, type NodeLoad } from '../../../../shared/load-balancer.js'
import { isStream } from '../../streams.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** this node's load now: requests in flight, CPU, event loop, database connections */
    nodeLoad(): NodeLoad
  }
}

/**
 * This node's load, which the router polls (GET /v1/load) and the answers to the gates carry
 * (X-Gate-Cloud-Load: gates with several cloud URLs choose by it); and every request's time, in the
 * performance monitor. The dashboard's event stream is neither load nor a request to time.
 */
export const nodeLoadPlugin = fp(
  async (app) => {
    const { perf, pool } = app
    const nodeName = app.config.nodeName ?? os.hostname()
    let inFlight = 0
    app.decorate('nodeLoad', (): NodeLoad => {
      const s = perf.latest()
      return {
        node: nodeName,
        ts: Date.now(),
        inFlight,
        elu: Math.min(1, Math.max(0, s?.elu ?? 0)),
        cpuPercent: Math.max(0, s?.cpuPercent ?? 0),
        dbConnections: Math.max(0, pool.totalCount - pool.idleCount),
        dbWaiting: pool.waitingCount,
      }
    })
    app.addHook('onRequest', async (req, reply) => {
      if (isStream(req)) return // open as long as a dashboard tab: neither load nor a request to time
      inFlight++
      // 'close' comes after every response, and also when the client leaves first (no onResponse then)
      reply.raw.once('close', () => {
        inFlight--
        if (!reply.raw.writableFinished)
          perf.recordRequest(req.method, req.routeOptions.url ?? 'unmatched', 499, reply.elapsedTime, {
            reqId: req.id,
          })
      })
    })
    app.addHook('onSend', async (req, reply, payload) => {
      if (req.url.startsWith('/v1/sync/') || req.url.startsWith('/v1/roster'))
        reply.header('X-Gate-Cloud-Load', formatLoadHeader(app.nodeLoad()))
      return payload
    })
    app.addHook('onResponse', async (req, reply) => {
      if (isStream(req)) return
      perf.recordRequest(
        req.method,
        req.routeOptions.url ?? 'unmatched',
        reply.statusCode,
        reply.elapsedTime,
        {
          reqId: req.id,
        },
      )
    })
  },
  { name: 'node-load', dependencies: ['config', 'pg', 'perf'] },
)
