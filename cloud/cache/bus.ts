import type { Cluster, Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { RedisTier } from './redis-tier.js'

/** An invalidation, as one node tells the others: keys dropped, tags bumped, or a prefix dropped. */
export type BusMessage =
  | { from: string; op: 'del'; keys: string[] }
  | { from: string; op: 'tag'; tags: Record<string, number> }
  | { from: string; op: 'prefix'; prefix: string }

/** A message as its sender gives it (the bus adds who sent it). */
export type Invalidation =
  | { op: 'del'; keys: string[] }
  | { op: 'tag'; tags: Record<string, number> }
  | { op: 'prefix'; prefix: string }

export interface InvalidationBusOptions {
  /** this node, so that it ignores its own messages */
  nodeId: string
  channel: string
  /** a connection of its own in subscriber mode; null: no bus (one node, or no Redis) */
  subscriber: Redis | Cluster | null
  /** publishes go through L2's circuit, like every other Redis call */
  tier: RedisTier
  log: Logger
  /** a message from another node (parsed, not yet checked field by field) */
  onMessage: (msg: BusMessage) => void
  /** the bus connection is back after a drop: messages may have been missed meanwhile */
  onReconnect: () => void
}

/**
 * The cache's pub/sub channel in Redis: every invalidation is published, and every node drops its
 * L1 copies of what another node invalidated. A node whose bus connection dropped may have missed
 * invalidations: it is told when the connection is back, and starts its L1 afresh.
 */
export class InvalidationBus {
  private up = false

  constructor(private readonly options: InvalidationBusOptions) {}

  /** Subscribe; when Redis cannot be reached yet, the subscription is made when it is back. */
  async start(): Promise<void> {
    const { subscriber: sub, channel, log } = this.options
    if (!sub) return
    sub.on('message', (from: string, raw: string) => {
      if (from === channel) this.receive(raw)
    })
    // messages missed while the bus was down may have invalidated anything
    sub.on('ready', () => {
      if (this.up) return
      this.up = true
      this.options.onReconnect()
    })
    sub.on('close', () => {
      this.up = false
    })
    try {
      await sub.subscribe(channel)
      this.up = true
    } catch (err) {
      log.warn({ err }, 'cache bus not subscribed yet; retried when Redis is back')
    }
  }

  /** Tell every other node; nothing without a bus. */
  async publish(invalidation: Invalidation): Promise<void> {
    if (!this.options.subscriber) return
    const msg: BusMessage = { from: this.options.nodeId, ...invalidation }
    await this.options.tier.publish(this.options.channel, JSON.stringify(msg))
  }

  private receive(raw: string): void {
    let msg: BusMessage
    try {
      msg = JSON.parse(raw) as BusMessage
    } catch {
      this.options.log.warn('unreadable cache bus message ignored')
      return
    }
    if (!msg || msg.from === this.options.nodeId) return
    this.options.onMessage(msg)
  }
}
