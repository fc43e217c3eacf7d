import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { Logger } from 'pino'
import type { CloudConfig } from '../config.js'

/** Where Redis is: one server (REDIS_URL) or a Cluster (REDIS_CLUSTER_NODES=host:port,host:port). */
export interface RedisSettings {
  url?: string | undefined
  clusterNodes?: readonly string[] | undefined
  /** a command not answered within this time fails (and counts against the circuit), ms */
  commandTimeoutMs: number
}

/** Where the service's Redis is: REDIS_URL or REDIS_CLUSTER_NODES, with CACHE_REDIS_TIMEOUT_MS. */
export function redisSettings(c: CloudConfig): RedisSettings {
  return {
    url: c.redisUrl,
    clusterNodes: c.redisClusterNodes?.split(','),
    commandTimeoutMs: c.cache.redisTimeoutMs,
  }
}

/** The cache's two connections: commands, and the subscriber of the invalidation bus. */
export interface RedisPair {
  client: Redis | Cluster
  subscriber: Redis | Cluster
  close(): Promise<void>
}

/**
 * Connections tuned for a cache: commands fail at once while Redis is unreachable (no offline queue:
 * a request never waits for a reconnect), a short command timeout, and reconnection forever with
 * backoff in the background. Errors are logged once per outage, without the URL (it may hold a password).
 */
export function connectRedis(settings: RedisSettings, log: Logger): RedisPair | null {
  if (!settings.url && (!settings.clusterNodes || settings.clusterNodes.length === 0)) return null
  const base: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: settings.commandTimeoutMs,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2_000),
  }
  const make = (): Redis | Cluster => {
    if (settings.clusterNodes && settings.clusterNodes.length > 0) {
      const nodes = settings.clusterNodes.map((hostPort) => {
        const [host, port] = hostPort.split(':')
        return { host: host || '127.0.0.1', port: Number(port) || 6379 }
      })
      return new Cluster(nodes, {
        enableOfflineQueue: false,
        redisOptions: base,
        clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2_000),
      })
    }
    return new Redis(settings.url as string, base)
  }
  const client = make()
  // the subscriber queues its SUBSCRIBE until connected (it is not on a request path)
  const subscriber = settings.clusterNodes?.length
    ? make()
    : new Redis(settings.url as string, { ...base, enableOfflineQueue: true })
  let down = false
  for (const connection of [client, subscriber]) {
    connection.on('error', (err: Error) => {
      if (!down) log.warn({ err: err.message }, 'Redis unreachable; the cache runs on L1 until it is back')
      down = true
    })
    connection.on('ready', () => {
      if (down) log.info('Redis reachable again')
      down = false
    })
  }
  return {
    client,
    subscriber,
    close: async () => {
      client.disconnect()
      subscriber.disconnect()
    },
  }
}
