import type { Cluster, Redis } from 'ioredis'
import { believableSession, maxBelievedSession } from './bounds.js'

/** Messages of one session of one gate heard by this node since its last sweep. */
export interface HeardSeqs {
  session: number
  /** their sequence numbers (0 to 2^31 - 1, as the payload schema bounds them), in any order */
  seqs: number[]
}

/** Sequence numbers found missing: `lost` of the seqs from..to (both included) of a gate's session. */
export interface SeqGap {
  gateId: string
  session: number
  /** how many of from..to no node heard */
  lost: number
  from: number
  to: number
}

/**
 * Lost messages found across the fleet's nodes. With a shared subscription each node hears only
 * part of a gate's messages, so a jump in the sequence numbers one node sees is no loss: every
 * node records what it heard, and a sequence number counts as lost only when no node had it
 * `graceMs` after a higher one was heard (messages still in flight at another node are not lost).
 */
export interface SeqLedger {
  /**
   * Record what this node heard since its last sweep (`heard`: by gate id) at `now` (ms since the
   * epoch), and return the gaps this call judged. A gate's seqs are judged when a message of it is
   * recorded at least `graceMs` after the highest seq then heard of it was first recorded, up to
   * that seq; each gap is returned once, to one caller. A session is followed from the first seq
   * heard of it, and a newer session starts over; an older one is ignored, and so are a session
   * too far ahead of `now` to be believed (bounds.ts) and a seq more than MAX_SEQ_JUMP beyond the
   * highest heard. Rejects when the ledger cannot be reached: the caller records the same seqs
   * again later, and a seq recorded twice counts once.
   */
  record(heard: ReadonlyMap<string, HeardSeqs>, now: number): Promise<SeqGap[]>
}

interface Track {
  session: number
  /** every seq below this is judged */
  judged: number
  highest: number
  /** once graceMs have passed since markAt, the seqs up to mark are judged */
  mark: number
  markAt: number
  seen: Set<number>
}

/**
 * A seq this far beyond the highest heard of its session is not believed (a broken or hostile
 * gate): it is left out, so that one message cannot make the judgement walk, or the bitmap grow,
 * over millions of numbers.
 */
export const MAX_SEQ_JUMP = 100_000

/** One node, which hears every message: the same judgement as RedisSeqLedger, in memory. */
export class LocalSeqLedger implements SeqLedger {
  private readonly tracks = new Map<string, Track>()

  constructor(private readonly graceMs = 2_000) {}

  async record(heard: ReadonlyMap<string, HeardSeqs>, now: number): Promise<SeqGap[]> {
    const gaps: SeqGap[] = []
    for (const [gateId, h] of heard) {
      if (h.seqs.length === 0 || !believableSession(h.session, now)) continue
      let t = this.tracks.get(gateId)
      // a track of a session far ahead of the clock would ignore every real session: started over
      if (t && !believableSession(t.session, now)) t = undefined
      if (t && h.session < t.session) continue
      if (!t || h.session > t.session) {
        // a session is followed from the first message heard of it
        const first = Math.min(...h.seqs)
        t = {
          session: h.session,
          judged: first,
          highest: first,
          mark: first - 1,
          markAt: now,
          seen: new Set(),
        }
        this.tracks.set(gateId, t)
      }
      for (const s of h.seqs) {
        if (s < t.judged || s > t.highest + MAX_SEQ_JUMP) continue
        t.seen.add(s)
        if (s > t.highest) t.highest = s
      }
      if (t.mark >= t.judged && now - t.markAt >= this.graceMs) {
        // counted over the seqs heard, not over the range: a range can be long, the set is not
        let had = 0
        for (const s of t.seen)
          if (s <= t.mark) {
            t.seen.delete(s)
            had++
          }
        const lost = t.mark - t.judged + 1 - had
        if (lost > 0) gaps.push({ gateId, session: t.session, lost, from: t.judged, to: t.mark })
        t.judged = t.mark + 1
      }
      if (t.mark < t.judged && t.highest >= t.judged) {
        t.mark = t.highest
        t.markAt = now
      }
    }
    return gaps
  }
}

// Per gate: a bitmap of the seqs heard (key prefix + gate id) and its track in one hash field:
// "session judged highest mark markAt base". The same judgement as LocalSeqLedger, for the gates in
// this call, in one atomic step.
const RECORD = `
local meta, bitsPrefix, now, grace, ttl, maxJump, maxSession = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local out = {}
local i = 7
while i <= #ARGV do
  local gate, session, n = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local bits = bitsPrefix .. gate
  local cur = redis.call('HGET', meta, gate)
  local t = nil
  if cur then
    local f = {}
    for v in string.gmatch(cur, '%S+') do f[#f + 1] = tonumber(v) end
    t = { session = f[1], judged = f[2], highest = f[3], mark = f[4], markAt = f[5], base = f[6] or 0 }
    -- a session far ahead of the clock (recorded before sessions were bounded) would ignore every real one
    if t.session > maxSession then t = nil end
  end
  if n > 0 and (t == nil or session > t.session) then
    local first = tonumber(ARGV[i + 3])
    for k = 2, n do first = math.min(first, tonumber(ARGV[i + 2 + k])) end
    redis.call('DEL', bits)
    -- bit k of the bitmap is seq base + k: the bitmap holds this session's seqs, whatever they start at
    t = { session = session, judged = first, highest = first, mark = first - 1, markAt = now, base = first }
  end
  if n > 0 and session == t.session then
    for k = 1, n do
      local s = tonumber(ARGV[i + 2 + k])
      if s >= t.judged and s - t.highest <= maxJump then
        redis.call('SETBIT', bits, s - t.base, 1)
        if s > t.highest then t.highest = s end
      end
    end
    redis.call('EXPIRE', bits, ttl)
    if t.mark >= t.judged and now - t.markAt >= grace then
      local had = redis.call('BITCOUNT', bits, t.judged - t.base, t.mark - t.base, 'BIT')
      local lost = t.mark - t.judged + 1 - had
      if lost > 0 then
        out[#out + 1] = gate
        out[#out + 1] = t.session .. ' ' .. lost .. ' ' .. t.judged .. ' ' .. t.mark
      end
      t.judged = t.mark + 1
    end
    if t.mark < t.judged and t.highest >= t.judged then
      t.mark = t.highest
      t.markAt = now
    end
    redis.call('HSET', meta, gate, t.session .. ' ' .. t.judged .. ' ' .. t.highest .. ' ' .. t.mark .. ' ' .. t.markAt .. ' ' .. t.base)
  end
  i = i + 3 + n
end
redis.call('EXPIRE', meta, ttl)
return out`

type RecordingRedis = (Redis | Cluster) & {
  fleetRecordSeqs(meta: string, ...args: Array<string | number>): Promise<string[]>
}

/**
 * Every node's seqs in Redis. A gate's seqs are judged when a message of it is recorded at least
 * `graceMs` after the highest of them was first heard: a gap shows at the gate's next report, and
 * a gate that goes quiet keeps its last seqs unjudged (its silence is another alert). The keys
 * share a hash tag: one slot in a Cluster, as the script needs.
 */
export class RedisSeqLedger implements SeqLedger {
  private readonly redis: RecordingRedis

  constructor(
    redis: Redis | Cluster,
    private readonly prefix = '{gc:fleet}:seq',
    private readonly graceMs = 2_000,
    private readonly ttlS = 7 * 86_400,
  ) {
    if (!('fleetRecordSeqs' in redis))
      redis.defineCommand('fleetRecordSeqs', { numberOfKeys: 1, lua: RECORD })
    this.redis = redis as RecordingRedis
  }

  async record(heard: ReadonlyMap<string, HeardSeqs>, now: number): Promise<SeqGap[]> {
    if (heard.size === 0) return []
    const args: Array<string | number> = [
      `${this.prefix}:bits:`,
      now,
      this.graceMs,
      this.ttlS,
      MAX_SEQ_JUMP,
      maxBelievedSession(now),
    ]
    for (const [gateId, h] of heard) {
      if (!believableSession(h.session, now)) continue
      args.push(gateId, h.session, h.seqs.length)
      for (const s of h.seqs) args.push(s) // not push(...seqs): a long list would overflow the stack
    }
    const flat = await this.redis.fleetRecordSeqs(`${this.prefix}:meta`, ...args)
    const gaps: SeqGap[] = []
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const [session, lost, from, to] = (flat[i + 1] as string).split(' ').map(Number) as [
        number,
        number,
        number,
        number,
      ]
      gaps.push({ gateId: flat[i] as string, session, lost, from, to })
    }
    return gaps
  }
}
