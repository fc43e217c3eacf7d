import { z } from 'zod'

/** Why a gate denied someone. */
export const denyReasonSchema = z.enum(['unknown', 'revoked', 'inactive', 'already_checked_in'])

/**
 * One check-in decision, admit or deny, as the gate made it. The id is a UUIDv7 made on the gate,
 * which makes every upload idempotent. Times: `ts` is the gate's wall clock (ms since epoch, can be
 * wrong on a Pi without RTC before NTP), `monoMs` its monotonic clock within boot `bootId`.
 */
export const checkinSchema = z
  .object({
    id: z.string().uuid(),
    gateId: z.string().min(1).max(64),
    token: z.string().min(1).max(48),
    participantId: z.string().max(128).nullable(),
    method: z.literal('ble'),
    decision: z.enum(['admit', 'deny']),
    reason: denyReasonSchema.nullable(),
    rssi: z.number().int().min(-127).max(20),
    ts: z.number().int().nonnegative(),
    monoMs: z.number().nonnegative(),
    bootId: z.string().uuid(),
    bootSeq: z.number().int().positive(),
    rosterVersion: z.number().int().nonnegative(),
  })
  .strict()
export type Checkin = z.infer<typeof checkinSchema>
