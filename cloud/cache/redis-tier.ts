import type { Cluster, Redis } from 'ioredis'
import type { Logger } from 'pino'
import { Circuit, type CircuitState } from './circuit.js'

/**
 * L2: the cache's calls to Redis (standalone or Cluster), each through a circuit breaker. A call
 * answers null when there is no Redis, while the circuit is open, or when Redis fails (the failure
 * counts against the circuit): Redis never fails a look-up. Every key is under `keyPrefix`.
 */
export class RedisTier {
  private readonly circuit: Circuit

  constructor(
    private readonly redis: Redis | Cluster | null,
    private readonly options: {
      keyPrefix: string
      /** consecutive failures that open the circuit */
      circuitThreshold: number
      /** how long the circuit stays open before one call is let through, ms */
      circuitOpenMs: number
      log: Logger
      now: () => number
      /** set to 1 while the circuit is open */
      circuitOpen: { set(value: number): void }
    },
  ) {
    this.circuit = new Circuit(options.circuitThreshold, options.circuitOpenMs, options.now, (state) => {
      options.circuitOpen.set(state === 'open' ? 1 : 0)
      if (state === 'open')
        options.log.warn('Redis is failing: circuit open, serving from L1 and the database')
      if (state === 'closed') options.log.info('Redis is back: circuit closed')
    })
  }

  /** Whether there is a Redis at all (the circuit aside). */
  get present(): boolean {
    return this.redis !== null
  }

  get circuitState(): CircuitState {
    return this.circuit.state
  }

  /** The value of `key`; null when absent, or when L2 is absent, open or failing. */
  get(key: string): Promise<string | null> {
    return this.run((client) => client.get(this.options.keyPrefix + key))
  }

  /** Write `value` at `key`, expiring in `px` ms. */
  async set(key: string, value: string, px: number): Promise<void> {
    await this.run((client) => client.set(this.options.keyPrefix + key, value, 'PX', px))
  }

  /** The counter at `key` plus one; null when L2 is absent, open or failing. */
  incr(key: string): Promise<number | null> {
    return this.run((client) => client.incr(this.options.keyPrefix + key))
  }

  /** Unlink `keys`, one by one, in one call through the circuit. */
  async unlink(keys: readonly string[]): Promise<void> {
    await this.run(async (client) => {
      for (const key of keys) await client.unlink(this.options.keyPrefix + key)
    })
  }

  /**
   * Unlink every key starting with `prefix`: SCAN + UNLINK on every master, never KEYS (which
   * blocks Redis). How many were removed; null when L2 is absent, open or failing.
   */
  unlinkPrefix(prefix: string): Promise<number | null> {
    return this.run(async (client) => {
      let removed = 0
      const masters =
        'nodes' in client && typeof client.nodes === 'function'
          ? (client as Cluster).nodes('master')
          : [client as Redis]
      for (const node of masters) {
        let cursor = '0'
        do {
          const [next, keys] = await node.scan(
            cursor,
            'MATCH',
            `${escapeGlob(this.options.keyPrefix + prefix)}*`,
            'COUNT',
            500,
          )
          cursor = next
          // one UNLINK per key: in a Cluster the keys of one batch may live in different slots
          for (const key of keys) removed += await node.unlink(key)
        } while (cursor !== '0')
      }
      return removed
    })
  }

  /** Publish `message` on `channel` (a full channel name, not prefixed). */
  async publish(channel: string, message: string): Promise<void> {
    await this.run((client) => client.publish(channel, message))
  }

  /** Run an L2 call through the circuit; null when L2 is absent, open or failing. */
  private async run<R>(fn: (client: Redis | Cluster) => Promise<R>): Promise<R | null> {
    const client = this.redis
    if (!client || !this.circuit.allow()) return null
    try {
      const out = await fn(client)
      this.circuit.success()
      return out
    } catch (err) {
      this.circuit.failure()
      this.options.log.debug({ err }, 'Redis call failed')
      return null
    }
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (char) => `\\${char}`)
}
