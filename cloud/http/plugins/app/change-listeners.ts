import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import { ChangeListener } from '../../../cache/change-listener.js'
import { ROSTER_TAG } from '../../../cache/tags.js'

/**
 * The database's announcements (LISTEN), one connection each, stopped when the app closes:
 * - `participants_changed`: any change to participants (import, API, plain SQL) drops the cached
 *   roster and token look-ups, and is read into the roster index;
 * - `gate_keys_changed`: a revoked or rotated key stops working on every node at once, not when
 *   its cache entry expires.
 * The roster index is first read once its listener is on, so no change falls between the two.
 */
export const changeListenersPlugin = fp<{ log: Logger }>(
  async (app, opts) => {
    const { cache, rosterIndex, gateKeys } = app
    const log = opts.log
    const participants = new ChangeListener(
      app.config.databaseUrl,
      'participants_changed',
      () => {
        cache.invalidateTags(ROSTER_TAG).catch((err) => log.warn({ err }, 'roster invalidation failed'))
        void rosterIndex.refresh()
      },
      log,
    )
    app.addHook('onClose', async () => participants.stop())
    await participants.start()
    await rosterIndex.refresh()
    const keys = new ChangeListener(app.config.databaseUrl, 'gate_keys_changed', () => gateKeys.clear(), log)
    app.addHook('onClose', async () => keys.stop())
    await keys.start()
  },
  { name: 'change-listeners', dependencies: ['config', 'cache', 'roster-index', 'gate-auth'] },
)
