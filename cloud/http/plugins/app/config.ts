import fp from 'fastify-plugin'
import type { CloudConfig } from '../../../config.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** the service's configuration, validated once at start */
    config: CloudConfig
  }
}

/** The configuration, for every plugin and route registered after it. */
export const configPlugin = fp<{ config: CloudConfig }>(
  async (app, opts) => {
    app.decorate('config', opts.config)
  },
  { name: 'config' },
)
