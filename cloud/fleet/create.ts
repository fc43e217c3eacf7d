import type pg from 'pg'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import type { RedisPair } from '../cache/redis.js'
import { cacheDefaults } from '../cache/tiered-cache.js'
import type { CloudConfig } from '../config.js'
import { KnownGates, postgresGateIds } from './admission.js'
import { type FleetAlert, FleetMonitor } from './monitor.js'
import { RedisSeqLedger } from './seqs.js'
import { RedisSilenceClock } from './silence.js'
import { postgresHistory, RedisFleetStore } from './stores.js'

/**
 * The fleet monitor of a node from its configuration, or null without MQTT_URL. With Redis the
 * nodes share the fleet's view, silence clock and sequence numbers; without, one node keeps them
 * in memory. The metrics history goes to Postgres, and only gates of the gates table are read.
 */
export function createFleetMonitor(
  c: CloudConfig,
  deps: {
    pool: pg.Pool
    redis: RedisPair | null
    registry: Registry
    log: Logger
    onAlert: (alert: FleetAlert) => void
  },
): FleetMonitor | null {
  if (!c.alerts.mqttUrl) return null
  const log = deps.log.child({ component: 'fleet' })
  const prefix = cacheDefaults.keyPrefix
  const redis = deps.redis?.client
  return new FleetMonitor({
    url: c.alerts.mqttUrl,
    group: c.fleet.sharedSubscription ? c.fleet.shareGroup : null,
    silentAfterMs: c.fleet.silentAfterMs,
    maxTemperatureC: c.fleet.maxTemperatureC,
    log,
    username: c.alerts.mqttUsername,
    password: c.alerts.mqttPassword,
    registry: deps.registry,
    ...(redis
      ? {
          store: new RedisFleetStore(redis, `${prefix}fleet`),
          silence: new RedisSilenceClock(redis, `${prefix}fleet:due`),
          seqs: new RedisSeqLedger(redis, `{${prefix}fleet}:seq`),
        }
      : {}),
    history: postgresHistory(deps.pool),
    // a topic name alone does not make a gate: the gates table does
    knownGates: new KnownGates({ load: postgresGateIds(deps.pool), log }),
    alertRate: { burst: c.fleet.alertBurst, perHour: c.fleet.alertsPerHour },
    onAlert: deps.onAlert,
  })
}
