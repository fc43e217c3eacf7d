import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { LocalSilenceClock, RedisSilenceClock } from '../../cloud/fleet/silence.js'
import { silenceClockContract } from './silence-clock.contract.js'

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379'

silenceClockContract('in memory (one node)', () => {
  const clock = new LocalSilenceClock()
  return { nodes: [clock, clock] }
})

silenceClockContract('Redis (nodes sharing it)', () => {
  const redis = new Redis(REDIS_URL)
  const key = `t${randomBytes(4).toString('hex')}:fleet:due`
  return {
    nodes: [new RedisSilenceClock(redis, key), new RedisSilenceClock(redis, key)],
    cleanup: async () => {
      await redis.del(key)
      redis.disconnect()
    },
  }
})
