import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { LocalSeqLedger, RedisSeqLedger } from '../../cloud/fleet/seqs.js'
import { seqLedgerContract } from './seq-ledger.contract.js'

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379'

seqLedgerContract('in memory (one node)', (graceMs) => {
  const ledger = new LocalSeqLedger(graceMs)
  return { nodes: [ledger, ledger] }
})

seqLedgerContract('Redis (nodes sharing it)', async (graceMs) => {
  const redis = new Redis(REDIS_URL)
  const prefix = `{t${randomBytes(4).toString('hex')}}:seq`
  return {
    nodes: [new RedisSeqLedger(redis, prefix, graceMs), new RedisSeqLedger(redis, prefix, graceMs)],
    cleanup: async () => {
      const keys = await redis.keys(`${prefix}:*`)
      if (keys.length > 0) await redis.del(...keys)
      redis.disconnect()
    },
  }
})
