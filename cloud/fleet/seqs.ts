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

/** What the ledger follows of one gate: its current session and how far it is judged. */
interface Track {
  session: number
  /** every seq below this is judged */
  judged: number
  /** the highest seq heard of the session */
  highest: number
  /** once graceMs have passed since markAt, the seqs up to mark are judged */
  mark: number
  /** when `mark` was set, ms since the epoch */
  markAt: number
  /** the seqs heard from `judged` on */
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
    for (const [gateId, { session, seqs }] of heard) {
      if (seqs.length === 0 || !believableSession(session, now)) continue
      let track = this.tracks.get(gateId)
      // a track of a session far ahead of the clock would ignore every real session: started over
      if (track && !believableSession(track.session, now)) track = undefined
      if (track && session < track.session) continue
      if (!track || session > track.session) {
        // a session is followed from the first message heard of it
        const first = Math.min(...seqs)
        track = { session, judged: first, highest: first, mark: first - 1, markAt: now, seen: new Set() }
        this.tracks.set(gateId, track)
      }
      for (const seq of seqs) {
        if (seq < track.judged || seq > track.highest + MAX_SEQ_JUMP) continue
        track.seen.add(seq)
        if (seq > track.highest) track.highest = seq
      }
      if (track.mark >= track.judged && now - track.markAt >= this.graceMs) {
        // counted over the seqs heard, not over the range: a range can be long, the set is not
        let had = 0
        for (const seq of track.seen)
          if (seq <= track.mark) {
            track.seen.delete(seq)
            had++
          }
        const lost = track.mark - track.judged + 1 - had
        if (lost > 0) gaps.push({ gateId, session, lost, from: track.judged, to: track.mark })
        track.judged = track.mark + 1
      }
      if (track.mark < track.judged && track.highest >= track.judged) {
        track.mark = track.highest
        track.markAt = now
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
  local gate, session, count = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local bits = bitsPrefix .. gate
  local stored = redis.call('HGET', meta, gate)
  local track = nil
  if stored then
    local fields = {}
    for value in string.gmatch(stored, '%S+') do fields[#fields + 1] = tonumber(value) end
    track = { session = fields[1], judged = fields[2], highest = fields[3], mark = fields[4], markAt = fields[5], base = fields[6] or 0 }
    -- a session far ahead of the clock (recorded before sessions were bounded) would ignore every real one
    if track.session > maxSession then track = nil end
  end
  if count > 0 and (track == nil or session > track.session) then
    local first = tonumber(ARGV[i + 3])
    for k = 2, count do first = math.min(first, tonumber(ARGV[i + 2 + k])) end
    redis.call('DEL', bits)
    -- bit k of the bitmap is seq base + k: the bitmap holds this session's seqs, whatever they start at
    track = { session = session, judged = first, highest = first, mark = first - 1, markAt = now, base = first }
  end
  if count > 0 and session == track.session then
    for k = 1, count do
      local seq = tonumber(ARGV[i + 2 + k])
      if seq >= track.judged and seq - track.highest <= maxJump then
        redis.call('SETBIT', bits, seq - track.base, 1)
        if seq > track.highest then track.highest = seq end
      end
    end
    redis.call('EXPIRE', bits, ttl)
    if track.mark >= track.judged and now - track.markAt >= grace then
      local had = redis.call('BITCOUNT', bits, track.judged - track.base, track.mark - track.base, 'BIT')
      local lost = track.mark - track.judged + 1 - had
      if lost > 0 then
        out[#out + 1] = gate
        out[#out + 1] = track.session .. ' ' .. lost .. ' ' .. track.judged .. ' ' .. track.mark
      end
      track.judged = track.mark + 1
    end
    if track.mark < track.judged and track.highest >= track.judged then
      track.mark = track.highest
      track.markAt = now
    end
    redis.call('HSET', meta, gate, track.session .. ' ' .. track.judged .. ' ' .. track.highest .. ' ' .. track.mark .. ' ' .. track.markAt .. ' ' .. track.base)
  end
  i = i + 3 + count
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
    for (const [gateId, { session, seqs }] of heard) {
      if (!believableSession(session, now)) continue
      args.push(gateId, session, seqs.length)
      for (const seq of seqs) args.push(seq) // not push(...seqs): a long list would overflow the stack
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
