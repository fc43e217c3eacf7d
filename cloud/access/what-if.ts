import { z } from 'zod'
import { AccessEngine, type AccessVerdict, describeVerdict } from '../../shared/access/engine.js'
import { GateError } from '../../shared/errors.js'
import type { Queryable } from '../db/pool.js'
import { zoneOccupancy } from './occupancy.js'
import { currentPolicy } from './policies.js'

/** A "what would happen if" question: this participant at this gate, now or at a given time. */
export const whatIfSchema = z
  .object({
    gateId: z.string().min(1).max(64),
    participantId: z.string().min(1).max(128),
    /** ISO 8601 or ms since the epoch; default now */
    at: z.union([z.number().int().nonnegative(), z.string().datetime({ offset: true })]).optional(),
  })
  .strict()

/** The answer: the engine's verdict, as one line too, and what the cloud could not know. */
export interface WhatIfAnswer {
  policyVersion: number
  at: string
  verdict: AccessVerdict
  summary: string
  /** what the answer leaves out */
  caveats: string[]
}

/**
 * Run the gates' engine in the cloud: would `participantId` pass `gateId` at `at`, by the event's
 * policy, the participant's status, category and tags, and the zones' occupancy now? The
 * participant's own passages are the gates' (anti-passback, entries per day): the answer assumes
 * none, and says so.
 */
export async function whatIf(
  db: Queryable,
  eventId: string,
  q: z.infer<typeof whatIfSchema>,
  now: number,
): Promise<WhatIfAnswer> {
  const policy = await currentPolicy(db, eventId)
  if (policy === null) throw new GateError('E_NOT_FOUND', `event ${eventId} has no access policy`)
  const p = await db.query<{ status: string; category: string | null; tags: string[] }>(
    'SELECT status, category, tags FROM participants WHERE id = $1 AND event_id = $2',
    [q.participantId, eventId],
  )
  const row = p.rows[0]
  if (!row) throw new GateError('E_NOT_FOUND', `no participant ${q.participantId} in event ${eventId}`)
  const at = q.at === undefined ? now : new Date(q.at).getTime()
  const engine = new AccessEngine(policy)
  const caveats = ["the participant's passages are known to the gates only: none are assumed here"]
  let verdict: AccessVerdict
  if (row.status !== 'active') {
    verdict = {
      decision: 'deny',
      reason: null,
      ruleId: null,
      explanation: `the participant is ${row.status}`,
      warnings: [],
      enters: null,
      leaves: null,
    }
  } else {
    const zones = (await zoneOccupancy(db, eventId, now)) ?? []
    if (at !== now) caveats.push('places left are those of now, not of that time')
    verdict = engine.evaluate({
      gateId: q.gateId,
      holder: { participantId: q.participantId, category: row.category, tags: row.tags },
      history: { inside: () => false, entries: () => 0, entriesOn: () => 0 },
      placesLeft: (zone) => {
        const z = zones.find((x) => x.zone === zone)
        return z?.capacity == null ? null : z.capacity - z.occupancy
      },
      now: at,
    })
  }
  return {
    policyVersion: policy.version,
    at: new Date(at).toISOString(),
    verdict,
    summary:
      verdict.reason === null && verdict.decision === 'deny'
        ? `deny: ${verdict.explanation}`
        : describeVerdict(verdict),
    caveats,
  }
}
