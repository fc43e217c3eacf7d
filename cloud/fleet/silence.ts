import type { Cluster, Redis } from 'ioredis'

/**
 * When each gate must next be heard from, kept where every cloud node meets. Metrics and events
 * arrive through a shared subscription, so one node sees only part of a gate's messages: a node
 * alone cannot tell a silent gate from one whose messages went to another node. Every node
 * pushes the deadlines of the gates it hears (a deadline only ever moves later), and every node
 * claims the deadlines that passed: each expired gate is given to exactly one claimer, which
 * declares it silent once for the whole fleet.
 */
export interface SilenceClock {
  /**
   * Set each gate's deadline: gate id -> the time by which it must be heard from again (ms since
   * the epoch). A gate keeps the later of its deadline and the one pushed, whichever node pushed it.
   */
  push(deadlines: ReadonlyMap<string, number>): Promise<void>
  /** No deadline for these gates any more (they said offline, by a will or a stop). */
  forget(gateIds: readonly string[]): Promise<void>
  /**
   * Take the gates whose deadline is at or before `now` (ms since the epoch), with their deadline:
   * at most `max` of them, the earliest deadlines first. Each is given to one caller only and its
   * deadline is gone (until a new one is pushed).
   */
  claim(now: number, max: number): Promise<Array<[gateId: string, deadline: number]>>
}

/** One node without shared state: it hears all of every gate's messages. */
export class LocalSilenceClock implements SilenceClock {
  private readonly due = new Map<string, number>()

  async push(deadlines: ReadonlyMap<string, number>): Promise<void> {
    for (const [gateId, deadline] of deadlines)
      if (deadline > (this.due.get(gateId) ?? Number.NEGATIVE_INFINITY)) this.due.set(gateId, deadline)
  }

  async forget(gateIds: readonly string[]): Promise<void> {
    for (const gateId of gateIds) this.due.delete(gateId)
  }

  async claim(now: number, max: number): Promise<Array<[string, number]>> {
    const passed: Array<[string, number]> = []
    for (const [gateId, deadline] of this.due) if (deadline <= now) passed.push([gateId, deadline])
    // the most overdue first, as the sorted set in Redis gives them: when more than `max` passed
    // at once, the gates silent the longest are declared first
    const out = passed.sort((a, b) => a[1] - b[1]).slice(0, Math.max(0, max))
    for (const [gateId] of out) this.due.delete(gateId)
    return out
  }
}

// the expired members and their removal in one step, so two nodes never claim the same gate
const CLAIM = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local members = {}
for i = 1, #due, 2 do members[#members + 1] = due[i] end
if #members > 0 then redis.call('ZREM', KEYS[1], unpack(members)) end
return due`

type ClaimingRedis = (Redis | Cluster) & {
  fleetClaimSilent(key: string, now: number, max: number): Promise<string[]>
}

/** A sorted set in Redis (score = deadline): ZADD GT keeps the latest, a Lua script claims. */
export class RedisSilenceClock implements SilenceClock {
  private readonly redis: ClaimingRedis

  constructor(
    redis: Redis | Cluster,
    private readonly key = 'gc:fleet:due',
  ) {
    if (!('fleetClaimSilent' in redis))
      redis.defineCommand('fleetClaimSilent', { numberOfKeys: 1, lua: CLAIM })
    this.redis = redis as ClaimingRedis
  }

  async push(deadlines: ReadonlyMap<string, number>): Promise<void> {
    if (deadlines.size === 0) return
    const args: Array<string | number> = []
    for (const [gateId, deadline] of deadlines) args.push(deadline, gateId)
    await this.redis.zadd(this.key, 'GT', ...args)
  }

  async forget(gateIds: readonly string[]): Promise<void> {
    if (gateIds.length > 0) await this.redis.zrem(this.key, ...gateIds)
  }

  async claim(now: number, max: number): Promise<Array<[string, number]>> {
    const flat = await this.redis.fleetClaimSilent(this.key, now, max)
    const out: Array<[string, number]> = []
    for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i] as string, Number(flat[i + 1])])
    return out
  }
}
