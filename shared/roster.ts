import { z } from 'zod'

/** A participant's status in the roster. Only 'active' admits. */
export const participantStatusSchema = z.enum(['active', 'revoked', 'inactive'])
export type ParticipantStatus = z.infer<typeof participantStatusSchema>

/** One roster line: the token a badge or phone broadcasts and who holds it. Tokens are lower-case hex. */
export const rosterEntrySchema = z
  .object({
    token: z
      .string()
      .transform((s) => s.trim().toLowerCase())
      .refine((s) => /^[0-9a-f]{4,48}$/.test(s), 'token must be 4..48 hex characters'),
    participantId: z.string().trim().min(1).max(128),
    status: participantStatusSchema.default('active'),
    name: z.string().max(200).optional(),
    email: z.string().max(320).optional(),
    /** ticket category, for the access rules (e.g. "vip") */
    category: z.string().trim().min(1).max(100).optional(),
    /** tags, for the access rules (e.g. "speaker", "workshop") */
    tags: z.array(z.string().trim().min(1).max(100)).max(50).optional(),
  })
  .strict()
export type RosterEntry = z.infer<typeof rosterEntrySchema>
