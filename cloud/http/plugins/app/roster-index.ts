import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import { RosterIndex } from '../../../ingest/roster-index.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** the roster as (event, participant, badge) on this node: the ingest's event check */
    rosterIndex: RosterIndex
  }
}

/** The roster index, empty until the change listeners read it (they keep it up to date). */
export const rosterIndexPlugin = fp<{ log: Logger }>(
  async (app, opts) => {
    app.decorate('rosterIndex', new RosterIndex(app.pool, opts.log))
  },
  { name: 'roster-index', dependencies: ['pg'] },
)
