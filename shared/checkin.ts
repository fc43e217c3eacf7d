import { z } from 'zod'

/**
 * Why a gate denied someone: the roster's reasons (unknown badge, revoked, inactive), the re-entry
 * window's, the access rules' (shared/access/engine.ts), a technician's (`by_hand`), and an admit
 * the person did not go through (`not_passed`: the record that annuls it).
 */
export const denyReasonSchema = z.enum([
  'unknown',
  'revoked',
  'inactive',
  'already_checked_in',
  'no_lane',
  'no_access',
  'outside_time_window',
  'anti_passback',
  'no_reentry',
  'entries_per_day',
  'entries_total',
  'zone_full',
  'by_hand',
  'not_passed',
])
export type DenyReason = z.infer<typeof denyReasonSchema>

/**
 * One check-in decision, admit or deny, as the gate made it. The id is a UUIDv7 made on the gate,
 * which makes every upload idempotent. Times: `ts` is the gate's wall clock (ms since epoch, can be
 * wrong on a Pi without RTC before NTP), `monoMs` its monotonic clock within boot `bootId`.
 */
/**
 * Text Postgres can store: no NUL, no unpaired UTF-16 surrogate (paired ones, emoji, are fine).
 * A regular expression, so that the JSON Schema made from this schema (the cloud's fast check)
 * says the same.
 */
const storableText = (max: number, min = 0) =>
  z
    .string()
    .min(min)
    .max(max)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what this refuses
    .regex(/^[^\u0000\uD800-\uDFFF]*$/u, 'holds a NUL or an unpaired surrogate, which cannot be stored')

export const checkinSchema = z
  .object({
    id: z.string().uuid(),
    gateId: storableText(64, 1),
    token: storableText(48, 1),
    participantId: storableText(128).nullable(),
    /** 'ble': the gate decided on a badge it heard; 'manual': a technician decided (gatectl) */
    method: z.enum(['ble', 'manual']),
    decision: z.enum(['admit', 'deny']),
    reason: denyReasonSchema.nullable(),
    rssi: z.number().int().min(-127).max(20),
    ts: z.number().int().nonnegative(),
    monoMs: z.number().nonnegative(),
    bootId: z.string().uuid(),
    bootSeq: z.number().int().positive(),
    rosterVersion: z.number().int().nonnegative(),
    // Under an access policy (absent otherwise, so records without one stay as small as before):
    /** the zone this passage entered / left */
    zoneIn: storableText(64, 1).optional(),
    zoneOut: storableText(64, 1).optional(),
    /** the rule that admitted or denied, and the policy version it belongs to */
    ruleId: storableText(64, 1).optional(),
    policyVersion: z.number().int().positive().optional(),
    /** a denial by the rules, in words: `VIP lounge opens at 18:00 Europe/Berlin` */
    explanation: storableText(300, 1).optional(),
    /** by hand: who decided (the technician's login) and why */
    actor: storableText(64, 1).optional(),
    note: storableText(300, 1).optional(),
    /** an admit the person did not go through: the id of the admit this record annuls */
    annuls: z.string().uuid().optional(),
  })
  .strict()
export type Checkin = z.infer<typeof checkinSchema>
