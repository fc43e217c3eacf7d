import { z } from 'zod'
import { checkinSchema } from './checkin.js'

/** The control socket speaks JSON lines. A request: */
export const controlRequestSchema = z
  .object({
    id: z.number().int().nonnegative(),
    method: z.enum([
      'status',
      'subscribe',
      'roster.invalidate',
      'roster.lookup',
      'scan.restart',
      'log.level',
      'sync.now',
      'sync.resendRefused',
      'checkin.byHand',
    ]),
    params: z.record(z.string(), z.unknown()).optional(),
  })
  .strict()
export type ControlRequest = z.infer<typeof controlRequestSchema>
export type ControlMethod = ControlRequest['method']

/** Streams a client can subscribe to. */
export const streamNameSchema = z.enum(['decisions', 'sightings', 'adverts'])
export type StreamName = z.infer<typeof streamNameSchema>

export const subscribeParamsSchema = z.object({ streams: z.array(streamNameSchema).min(1) }).strict()
export const lookupParamsSchema = z.object({ token: z.string().min(1).max(64) }).strict()
/** A technician's decision: the token, the verdict, who (their login) and why. */
export const byHandParamsSchema = z
  .object({
    token: z.string().trim().min(1).max(48),
    decision: z.enum(['admit', 'deny']),
    actor: z.string().trim().min(1).max(64),
    note: z.string().trim().min(1, 'say why (--reason)').max(300),
    /** `out`: a check-out by hand, the person left the gate's zone without passing it (an admit) */
    direction: z.enum(['in', 'out']).default('in'),
  })
  .strict()
  .refine((r) => r.direction === 'in' || r.decision === 'admit', {
    message: 'a check-out is an admit (the person goes out)',
    path: ['decision'],
  })
export const logLevelParamsSchema = z
  .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) })
  .strict()

/**
 * What the access rules made of a decision (gates with an access policy): the zone entered and
 * left, the rule that admitted or denied, why in plain words, and warnings (a full zone set to warn).
 */
export const accessNoteSchema = z.object({
  zoneIn: z.string().nullable(),
  zoneOut: z.string().nullable(),
  ruleId: z.string().nullable(),
  explanation: z.string().nullable(),
  warnings: z.array(z.string()),
  policyVersion: z.number().int().nonnegative(),
})
export type AccessNote = z.infer<typeof accessNoteSchema>

/** A decision as streamed live: the durable check-in plus how long it took from advert to durable. */
export const decisionEventSchema = checkinSchema.extend({
  latencyMs: z.number().nonnegative(),
  access: accessNoteSchema.optional(),
  /** a check-out by hand: the person is already out; it is recorded and logged, nothing opens */
  checkout: z.literal(true).optional(),
})
export type DecisionEvent = z.infer<typeof decisionEventSchema>

/** A token heard (only produced while someone subscribes). */
export const sightingEventSchema = z.object({
  token: z.string(),
  rssi: z.number(),
  smoothed: z.number().nullable(),
  decoder: z.string(),
  address: z.string(),
  present: z.boolean(),
})
export type SightingEvent = z.infer<typeof sightingEventSchema>

/** Responses and stream messages from the daemon. */
export const controlMessageSchema = z.union([
  z.object({ id: z.number(), ok: z.literal(true), result: z.unknown() }),
  z.object({
    id: z.number(),
    ok: z.literal(false),
    error: z.object({ code: z.string(), message: z.string() }),
  }),
  z.object({ stream: streamNameSchema, data: z.unknown() }),
])
export type ControlMessage = z.infer<typeof controlMessageSchema>

/** Longest accepted control line, bytes. */
export const MAX_CONTROL_LINE = 64 * 1024
