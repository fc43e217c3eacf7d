/**
 * The two caches compared, each set up the same way for one round: L1 of the same size, the same
 * Redis for L2 and for invalidations, the same loader.
 */
import { randomBytes } from 'node:crypto'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis'
import { Redis } from 'ioredis'
import type { Logger } from 'pino'
import { Registry } from 'prom-client'
import { connectRedis } from '../../cloud/cache/redis.js'
import { cacheDefaults, TieredCache } from '../../cloud/cache/tiered-cache.js'
import { drive, type RunResult } from './drive.js'

/** What a round runs on: the L1 size, the look-ups in flight, Redis, and the loader (Postgres). */
export interface Round {
  round: number
  seq: Uint32Array
  l1: number
  concurrency: number
  redisUrl: string
  load: (token: string) => Promise<unknown>
}

/** Our two-tier cache (cloud/cache/tiered-cache.ts). */
export async function driveOurs(r: Round, log: Logger): Promise<RunResult> {
  const pair = connectRedis({ url: r.redisUrl, commandTimeoutMs: 200 }, log)
  await new Promise((res) => setTimeout(res, 200))
  let loads = 0
  const c = new TieredCache({
    ...cacheDefaults,
    l1MaxEntries: r.l1,
    redis: pair?.client ?? null,
    subscriber: pair?.subscriber ?? null,
    keyPrefix: `bench:ours:${r.round}:${randomBytes(3).toString('hex')}:`,
    log,
    registry: new Registry(),
    hotHits: Number.MAX_SAFE_INTEGER, // same behaviour as the peer: no refresh-ahead
  })
  await c.start()
  const result = await drive(
    r.seq,
    r.concurrency,
    (t) =>
      c.getOrLoad(
        `tok:${t}`,
        async () => {
          loads++
          return r.load(t)
        },
        { ttlMs: 300_000 },
      ),
    () => loads,
  )
  await c.stop()
  await pair?.close()
  return result
}

/** BentoCache, with a memory L1, a Redis L2 and a Redis bus. */
export async function driveBento(r: Round): Promise<RunResult> {
  const conn = new Redis(r.redisUrl)
  let loads = 0
  const bc = new BentoCache({
    default: 'c',
    prefix: `bench:bento:${r.round}:${randomBytes(3).toString('hex')}`,
    stores: {
      c: bentostore()
        .useL1Layer(memoryDriver({ maxItems: r.l1 }))
        .useL2Layer(redisDriver({ connection: conn }))
        .useBus(
          redisBusDriver({
            connection: {
              host: new URL(r.redisUrl).hostname,
              port: Number(new URL(r.redisUrl).port || 6379),
            },
          }),
        ),
    },
  })
  const result = await drive(
    r.seq,
    r.concurrency,
    (t) =>
      bc.getOrSet({
        key: `tok:${t}`,
        ttl: '5m',
        factory: async () => {
          loads++
          return r.load(t)
        },
      }),
    () => loads,
  )
  await bc.disconnectAll()
  conn.disconnect()
  return result
}
