import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Registry } from 'prom-client'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { connectRedis, type RedisPair } from '../../../cloud/cache/redis.js'
import { cacheDefaults, TieredCache, type TieredCacheOptions } from '../../../cloud/cache/tiered-cache.js'
import { freePort, silentLog, tempDir } from '../../support/helpers.js'
import { eventually } from '../../support/process-helpers.js'

const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379'
const pairs: RedisPair[] = []
const caches: TieredCache[] = []
afterEach(async () => {
  for (const c of caches.splice(0)) await c.stop()
  for (const p of pairs.splice(0)) await p.close()
})

async function makeCache(
  opts: Partial<TieredCacheOptions> & { url?: string | null; prefix?: string } = {},
): Promise<TieredCache> {
  const pair =
    opts.url === null ? null : connectRedis({ url: opts.url ?? REDIS_URL, commandTimeoutMs: 200 }, silentLog)
  if (pair) pairs.push(pair)
  const c = new TieredCache({
    ...cacheDefaults,
    redis: pair?.client ?? null,
    subscriber: pair?.subscriber ?? null,
    log: silentLog,
    registry: new Registry(),
    ...opts,
    keyPrefix: opts.prefix ?? opts.keyPrefix ?? cacheDefaults.keyPrefix,
  })
  caches.push(c)
  if (pair)
    await eventually(() => pair.client.status === 'ready' && pair.subscriber.status === 'ready', 5_000, 20)
  await c.start()
  return c
}
const prefix = () => `t${randomBytes(4).toString('hex')}:`

describe('tiered cache, L1 alone', () => {
  it('loads a key once while many ask at the same moment (stampede protection)', async () => {
    const c = await makeCache({ url: null })
    let calls = 0
    const loader = async () => {
      calls++
      await new Promise((r) => setTimeout(r, 30))
      return { name: 'Ada' }
    }
    const all = await Promise.all(Array.from({ length: 50 }, () => c.getOrLoad('p:1', loader)))
    expect(calls).toBe(1)
    expect(all.every((v) => (v as { name: string }).name === 'Ada')).toBe(true)
    expect(await c.getOrLoad('p:1', loader)).toEqual({ name: 'Ada' })
    expect(calls).toBe(1)
  })

  it('caches falsy values as values and "not found" as a negative entry', async () => {
    const c = await makeCache({ url: null })
    let calls = 0
    const counted =
      <T>(v: T) =>
      async () => {
        calls++
        return v
      }
    for (const [k, v] of [
      ['zero', 0],
      ['empty', ''],
      ['no', false],
    ] as const) {
      expect(await c.getOrLoad(k, counted(v))).toBe(v)
      expect(await c.getOrLoad(k, counted('other'))).toBe(v)
    }
    expect(calls).toBe(3)
    expect(await c.getOrLoad('unknown-token', counted(null))).toBeNull()
    expect(await c.getOrLoad('unknown-token', counted('now known'))).toBeNull()
    expect(calls).toBe(4)
  })

  it('a tag invalidated while a load runs leaves that load outdated, not cached as current', async () => {
    const c = await makeCache({ url: null })
    let version = 1
    const loader = async () => {
      const seen = version
      await new Promise((r) => setTimeout(r, 30))
      return { version: seen }
    }
    // the source changes (and its tag is invalidated) while the first load is reading the old value
    const first = c.getOrLoad('roster::0', loader, { tags: ['participants'] })
    await new Promise((r) => setTimeout(r, 5))
    version = 2
    await c.invalidateTags('participants')
    expect(await first).toEqual({ version: 1 })
    expect(await c.getOrLoad('roster::0', loader, { tags: ['participants'] })).toEqual({ version: 2 })
  })

  it('expires with jitter, serves the last good value when the source fails (fail-safe), then gives up after the grace', async () => {
    let now = 1_000_000
    const c = await makeCache({ url: null, now: () => now, graceMs: 60_000, failSafeThrottleMs: 1_000 })
    expect(await c.getOrLoad('k', async () => 'v1', { ttlMs: 10_000 })).toBe('v1')
    now += 12_000 // expired (10 s +/- 10 %)
    const boom = async (): Promise<string> => {
      throw new Error('database down')
    }
    expect(await c.getOrLoad('k', boom, { ttlMs: 10_000 })).toBe('v1')
    now += 120_000 // beyond the grace: nothing to fall back on
    await expect(c.getOrLoad('k', boom, { ttlMs: 10_000 })).rejects.toThrow('database down')
    // jitter: keys written together do not all expire together
    const exps = new Set<number>()
    const jc = await makeCache({ url: null, now: () => now })
    for (let i = 0; i < 20; i++) await jc.getOrLoad(`j${i}`, async () => i, { ttlMs: 10_000 })
    now += 9_500
    for (let i = 0; i < 20; i++)
      await jc.getOrLoad(
        `j${i}`,
        async () => {
          exps.add(i)
          return -1
        },
        { ttlMs: 10_000 },
      )
    expect(exps.size).toBeGreaterThan(0)
    expect(exps.size).toBeLessThan(20)
  })

  it('warms L1 from one loader for many keys, never beyond its capacity', async () => {
    const c = await makeCache({ url: null, l1MaxEntries: 5 })
    const n = await c.warm([
      {
        loader: async () =>
          Array.from({ length: 8 }, (_, i) => ({ key: `tok:${i}`, value: { id: `P${i}` } })),
        opts: { tags: ['participants'] },
      },
    ])
    expect(n).toBe(5)
    expect(c.l1Size).toBe(5)
    let loads = 0
    const load = (v: unknown) => async () => {
      loads++
      return v
    }
    expect(await c.getOrLoad('tok:3', load(null), { tags: ['participants'] })).toEqual({ id: 'P3' })
    expect(loads).toBe(0)
    // warmed entries carry their tags: invalidating the tag drops them
    await c.invalidateTags('participants')
    expect(await c.getOrLoad('tok:3', load({ id: 'new' }), { tags: ['participants'] })).toEqual({ id: 'new' })
    expect(loads).toBe(1)
  })

  it('refreshes a hot key in the background before it expires, so its readers never wait', async () => {
    let now = 1_000_000
    const c = await makeCache({ url: null, now: () => now, hotHits: 3, eagerRefreshAt: 0.8, jitter: 0 })
    let version = 1
    let loads = 0
    const load = async () => {
      loads++
      return `v${version}`
    }
    expect(await c.getOrLoad('hot', load, { ttlMs: 10_000 })).toBe('v1')
    for (let i = 0; i < 3; i++) await c.getOrLoad('hot', load, { ttlMs: 10_000 })
    version = 2
    now += 8_500 // past 80 % of its freshness: this read answers at once and refreshes behind it
    expect(await c.getOrLoad('hot', load, { ttlMs: 10_000 })).toBe('v1')
    await new Promise((r) => setImmediate(r))
    expect(loads).toBe(2)
    now += 3_000 // the first entry would have expired by now; the refreshed one has not
    expect(await c.getOrLoad('hot', load, { ttlMs: 10_000 })).toBe('v2')
    expect(loads).toBe(2)
    // a cold key is not refreshed ahead: it simply expires
    await c.getOrLoad('cold', load, { ttlMs: 10_000 })
    now += 8_500
    await c.getOrLoad('cold', load, { ttlMs: 10_000 })
    expect(loads).toBe(3)
  })

  it('halves L1 under memory pressure, least recently used first', async () => {
    const c = await makeCache({ url: null })
    for (let i = 0; i < 100; i++) await c.getOrLoad(`m${i}`, async () => i)
    await c.getOrLoad('m0', async () => -1) // m0 recently used
    c.checkMemory(Number.MAX_SAFE_INTEGER)
    expect(c.l1Size).toBe(50)
    expect(await c.getOrLoad('m0', async () => -1)).toBe(0)
  })
})

describe('tiered cache with Redis (two nodes)', () => {
  it('a value loaded on one node is served from L2 on another, as the same object', async () => {
    const p = prefix()
    const a = await makeCache({ prefix: p })
    const b = await makeCache({ prefix: p })
    await a.getOrLoad('tok:abc', async () => ({ id: 'P1', n: 0, ok: false }))
    let loaded = false
    const v = await b.getOrLoad('tok:abc', async () => {
      loaded = true
      return null
    })
    expect(loaded).toBe(false)
    expect(v).toEqual({ id: 'P1', n: 0, ok: false })
  })

  it('a key or tag invalidated on one node drops every node L1 copy within a second', async () => {
    const p = prefix()
    const a = await makeCache({ prefix: p })
    const b = await makeCache({ prefix: p })
    let version = 1
    const load = async () => `v${version}`
    for (const c of [a, b]) {
      await c.getOrLoad('roster:0', load, { tags: ['participants'] })
      await c.getOrLoad('one', load)
    }
    version = 2
    await a.delete('one')
    await eventually(async () => (await b.getOrLoad('one', load)) === 'v2', 1_000, 20)
    await a.invalidateTags('participants')
    await eventually(
      async () => (await b.getOrLoad('roster:0', load, { tags: ['participants'] })) === 'v2',
      1_000,
      20,
    )
    expect(await a.getOrLoad('roster:0', load, { tags: ['participants'] })).toBe('v2')
  })

  it('deletes by prefix with SCAN + UNLINK in Redis and on every node', async () => {
    const p = prefix()
    const a = await makeCache({ prefix: p })
    const b = await makeCache({ prefix: p })
    for (let i = 0; i < 30; i++) await a.getOrLoad(`stats:${i}`, async () => i)
    await a.getOrLoad('keep', async () => 'kept')
    await b.getOrLoad('stats:1', async () => -1)
    const pair = pairs[0] as RedisPair
    expect(await pair.client.exists(`${p}stats:5`)).toBe(1)
    expect(await a.deleteByPrefix('stats:')).toBeGreaterThanOrEqual(30)
    expect(await pair.client.exists(`${p}stats:5`)).toBe(0)
    expect(await pair.client.exists(`${p}keep`)).toBe(1)
    await eventually(
      async () => (await b.getOrLoad('stats:1', async () => 'reloaded')) === 'reloaded',
      1_000,
      20,
    )
  })
})

describe('tiered cache when Redis dies and comes back', () => {
  let server: ChildProcess | null = null
  const startRedis = async (port: number) => {
    server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    )
    const probe = connectRedis({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 200 }, silentLog)
    await eventually(() => probe?.client.status === 'ready', 5_000, 20)
    await probe?.close()
  }
  afterAll(() => {
    server?.kill('SIGKILL')
  })

  it('keeps answering every look-up with Redis killed under load, opens the circuit, and uses L2 again once it is back', async () => {
    const port = await freePort()
    await startRedis(port)
    const c = await makeCache({ url: `redis://127.0.0.1:${port}`, prefix: prefix(), defaultTtlMs: 50 })
    let failures = 0
    let done = 0
    let running = true
    const db = new Map(Array.from({ length: 200 }, (_, i) => [`tok:${i}`, { id: `P${i}` }]))
    const load = async () => {
      let i = 0
      while (running) {
        const k = `tok:${i++ % 200}`
        try {
          const v = await c.getOrLoad(k, async () => db.get(k) ?? null)
          if ((v as { id: string }).id !== db.get(k)?.id) failures++
          done++
        } catch {
          failures++
        }
        await new Promise((r) => setImmediate(r))
      }
    }
    const loaders = [load(), load(), load()]
    await eventually(() => done > 500, 5_000, 20)
    server?.kill('SIGKILL')
    await eventually(() => c.circuitState === 'open', 5_000, 20)
    const before = done
    await eventually(() => done > before + 500, 5_000, 20)
    await startRedis(port)
    await eventually(() => c.circuitState === 'closed', 10_000, 20)
    const again = done
    await eventually(() => done > again + 500, 5_000, 20)
    running = false
    await Promise.all(loaders)
    expect(failures).toBe(0)
  }, 30_000)
})

describe('tiered cache on a Redis Cluster (three masters on loopback)', () => {
  const servers: ChildProcess[] = []
  let dir: { dir: string; cleanup: () => void } | null = null
  afterAll(() => {
    for (const s of servers) s.kill('SIGKILL')
    dir?.cleanup()
  })

  it('serves, invalidates by tag and deletes by prefix across the masters', async () => {
    dir = tempDir('gate-redis-cluster-')
    const ports = [await freePort(), await freePort(), await freePort()]
    for (const port of ports) {
      servers.push(
        spawn(
          'redis-server',
          [
            '--port',
            String(port),
            '--bind',
            '127.0.0.1',
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--save',
            '',
            '--appendonly',
            'no',
            '--dir',
            dir.dir,
          ],
          { stdio: 'ignore' },
        ),
      )
    }
    for (const port of ports) {
      const probe = connectRedis({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 500 }, silentLog)
      await eventually(() => probe?.client.status === 'ready', 5_000, 20)
      await probe?.close()
    }
    const create = spawn(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { stdio: 'ignore' },
    )
    expect(await new Promise((r) => create.on('exit', r))).toBe(0)
    const nodes = ports.map((p) => `127.0.0.1:${p}`)
    const mk = async () => {
      const pair = connectRedis({ clusterNodes: nodes, commandTimeoutMs: 500 }, silentLog) as RedisPair
      pairs.push(pair)
      await eventually(
        async () => {
          try {
            await pair.client.set('probe', '1')
            return pair.subscriber.status === 'ready'
          } catch {
            return false
          }
        },
        15_000,
        20,
      )
      const c = new TieredCache({
        ...cacheDefaults,
        redis: pair.client,
        subscriber: pair.subscriber,
        log: silentLog,
        registry: new Registry(),
      })
      caches.push(c)
      await c.start()
      return { c, pair }
    }
    const a = await mk()
    const b = await mk()
    let version = 1
    // keys spread over the slots of all three masters
    for (let i = 0; i < 40; i++)
      await a.c.getOrLoad(`tok:${i}`, async () => `v${version}-${i}`, { tags: ['participants'] })
    let loads = 0
    for (let i = 0; i < 40; i++)
      await b.c.getOrLoad(
        `tok:${i}`,
        async () => {
          loads++
          return 'x'
        },
        { tags: ['participants'] },
      )
    expect(loads).toBe(0)
    version = 2
    await a.c.invalidateTags('participants')
    await eventually(
      async () =>
        (await b.c.getOrLoad('tok:7', async () => `v${version}-7`, { tags: ['participants'] })) === 'v2-7',
      1_000,
      20,
    )
    expect(await a.c.deleteByPrefix('tok:')).toBeGreaterThanOrEqual(40)
    const left = await Promise.all(
      (a.pair.client as import('ioredis').Cluster).nodes('master').map((n) => n.keys('gc:tok:*')),
    )
    expect(left.flat()).toEqual([])
  }, 40_000)
})
