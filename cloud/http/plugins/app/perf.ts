import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { createPerfMonitor, type PerfMonitor } from '../../../monitor/perf.js'
import { createRegistry } from '../../../monitor/registry.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** where this node's metrics go (GET /metrics) */
    registry: Registry
    /** this node's last minutes: requests, named queries, the cache, the system */
    perf: PerfMonitor
  }
}

/** Options of the performance plugin. */
export interface PerfPluginOptions {
  log: Logger
  /** a fresh registry with the process metrics when absent */
  registry?: Registry
  /** the monitor, stopped by whoever made it; when absent one is started here and stopped on close */
  perf?: PerfMonitor
}

/** The metrics registry and the performance monitor. */
export const perfPlugin = fp<PerfPluginOptions>(
  async (app, opts) => {
    const registry = opts.registry ?? createRegistry()
    const perf = opts.perf ?? createPerfMonitor(app.config, opts.log, registry)
    app.decorate('registry', registry)
    app.decorate('perf', perf)
    if (opts.perf) return
    perf.start()
    app.addHook('onClose', async () => perf.stop())
  },
  { name: 'perf', dependencies: ['config'] },
)
