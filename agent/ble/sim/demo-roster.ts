import type { RosterEntry } from '../../../shared/roster.js'
import type { AgentConfig, DecodersConfig, SimConfig } from '../../config/schema.js'
import {
  type BadgeKind,
  enabledBadgeKinds,
  type ForeignKind,
  foreignPayload,
  type Payload,
  tokenHexLength,
} from './badges.js'
import { Prng } from './prng.js'

/** Who a simulated badge belongs to, as the roster will see it. */
export type BadgeRole = 'active' | 'revoked' | 'unknown'

/** One badge in the simulated crowd. */
export interface PlannedBadge {
  token: string
  /** null for unknown tokens (not in the roster) */
  participantId: string | null
  role: BadgeRole
  kind: BadgeKind
  address: string
  /** walks past the gate at the edge of range and must not be checked in */
  passerBy: boolean
}

/** A foreign device of the crowd (someone else's beacon, a sensor): what it sends, and from where. */
export interface PlannedForeign {
  kind: ForeignKind
  payload: Payload
  address: string
}

/** Everyone and everything the simulated gate will hear: a pure function of (sim config, decoders). */
export interface CrowdPlan {
  badges: PlannedBadge[]
  foreign: PlannedForeign[]
}

function uniqueToken(rng: Prng, hexLen: number, used: Set<string>): string {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const token = rng
      .bytes(Math.ceil(hexLen / 2))
      .toString('hex')
      .slice(0, hexLen)
    if (!used.has(token)) {
      used.add(token)
      return token
    }
  }
  throw new RangeError(
    `cannot draw another unique ${hexLen}-hex token; the crowd is larger than the token space`,
  )
}

/** Plan the crowd: tokens, badge kinds, addresses and foreign devices, deterministically from the seed. */
export function planCrowd(sim: SimConfig, decoders: DecodersConfig): CrowdPlan {
  const rng = new Prng(sim.seed)
  const kinds = enabledBadgeKinds(decoders)
  const used = new Set<string>()
  const badges: PlannedBadge[] = []
  if (kinds.length > 0) {
    const add = (role: BadgeRole, i: number, passerBy: boolean) => {
      const kind = kinds[i % kinds.length] as BadgeKind
      const token = uniqueToken(rng, tokenHexLength(kind, decoders), used)
      badges.push({
        token,
        participantId:
          role === 'unknown' ? null : `${role === 'revoked' ? 'R' : 'P'}-${String(i + 1).padStart(6, '0')}`,
        role,
        kind,
        address: rng.address(),
        passerBy,
      })
    }
    for (let i = 0; i < sim.participants; i++) add('active', i, rng.next() < sim.passersBy)
    for (let i = 0; i < sim.revoked; i++) add('revoked', i, false)
    for (let i = 0; i < sim.unknown; i++) add('unknown', i, false)
  }
  const foreign: PlannedForeign[] = []
  for (let i = 0; i < sim.foreign; i++) {
    const device = foreignPayload(rng, decoders)
    foreign.push({ ...device, address: rng.address() })
  }
  return { badges, foreign }
}

/** The roster that matches the simulated crowd: active and revoked participants (unknown tokens are not in it). */
export function demoRosterFor(config: AgentConfig): RosterEntry[] {
  const plan = planCrowd(config.source.sim, config.decoders)
  const out: RosterEntry[] = []
  for (const badge of plan.badges) {
    if (badge.participantId === null) continue
    const ordinal = Number(badge.participantId.slice(2))
    out.push({
      token: badge.token,
      participantId: badge.participantId,
      status: badge.role === 'revoked' ? 'revoked' : 'active',
      name: `${badge.role === 'revoked' ? 'Revoked' : 'Demo'} Participant ${ordinal}`,
      email: `${badge.participantId.toLowerCase()}@demo.invalid`,
    })
  }
  return out
}
