import { z } from 'zod'
import { participantStatusSchema } from './roster.js'

/** Most check-ins in one sync batch (the agent sends at most this many; the cloud refuses more). */
export const MAX_BATCH_RECORDS = 5_000

/**
 * A batch of check-ins from one gate (POST /v1/sync/checkins). `sentAt` is the gate's wall clock
 * when it sent the batch (ms since epoch): the cloud compares it with its own to see clock skew.
 * Records are validated one by one against shared/checkin.ts.
 */
export const syncBatchEnvelopeSchema = z
  .object({
    gateId: z.string().min(1).max(64),
    sentAt: z.number().int().nonnegative(),
    records: z.array(z.unknown()).min(1).max(MAX_BATCH_RECORDS),
  })
  .strict()
export type SyncBatchEnvelope = z.infer<typeof syncBatchEnvelopeSchema>

/** Why the cloud refused one record of an otherwise valid batch. */
export const recordRejectionSchema = z.enum(['ts_too_old', 'ts_in_future'])

/** The cloud's answer to a batch: every record is accepted, a duplicate, or rejected with a reason. */
export const syncResultSchema = z
  .object({
    accepted: z.number().int().nonnegative(),
    duplicates: z.number().int().nonnegative(),
    rejected: z.array(z.object({ id: z.string(), reason: recordRejectionSchema })),
    /** ids the cloud now holds (accepted and duplicates): the gate marks exactly these synced */
    stored: z.array(z.string()),
    serverTime: z.number().int(),
  })
  .strict()
export type SyncResult = z.infer<typeof syncResultSchema>

/** One roster change for gates (GET /v1/roster?since=cursor). */
export const rosterChangeSchema = z
  .object({
    token: z.string(),
    participantId: z.string(),
    status: participantStatusSchema,
    seq: z.number().int().positive(),
    /** with ?with=access: the participant's ticket category and tags, for the access rules */
    category: z.string().nullable().optional(),
    tags: z.array(z.string()).optional(),
  })
  .strict()

export const rosterDeltaSchema = z
  .object({
    /** pass this as `since` next time */
    cursor: z.number().int().nonnegative(),
    changes: z.array(rosterChangeSchema),
    /** more changes wait: ask again at once */
    more: z.boolean(),
  })
  .strict()
export type RosterDelta = z.infer<typeof rosterDeltaSchema>

/**
 * The cloud's answer to a gate's occupancy report (POST /v1/sync/occupancy): the gate's allotments
 * of the zones with a capacity it lets people into, and every zone's occupancy as merged now.
 */
export const occupancyAnswerSchema = z.object({
  policyVersion: z.number().int().nonnegative(),
  allotments: z.record(
    z.string(),
    z.object({ period: z.string(), limit: z.number().int().nonnegative() }).strict(),
  ),
  occupancy: z.record(z.string(), z.number().int().nonnegative()),
})
export type OccupancyAnswer = z.infer<typeof occupancyAnswerSchema>
