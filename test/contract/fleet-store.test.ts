import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { RedisFleetStore } from '../../cloud/fleet/stores.js'
import { fleetStoreContract } from './fleet-store.contract.js'

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379'

// The only implementation: a node without Redis keeps its own view in the monitor and shares none.
fleetStoreContract('Redis (nodes sharing it)', () => {
  const redis = new Redis(REDIS_URL)
  const key = `t${randomBytes(4).toString('hex')}:fleet`
  return {
    nodes: [new RedisFleetStore(redis, key), new RedisFleetStore(redis, key)],
    cleanup: async () => {
      await redis.del(key)
      redis.disconnect()
    },
  }
})
