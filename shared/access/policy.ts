import { z } from 'zod'
import { isTimeZone, WEEKDAYS } from './calendar.js'

/**
 * An event's access policy: its zones, the lanes its gates serve, and the rules of who may enter
 * which zone when. It is data: versioned, synced to the gates with the roster, and evaluated by
 * the one engine in engine.ts, which the gate runs offline and the cloud runs for its checks and
 * for "what would happen if" questions.
 *
 * Why a small typed schema and not a general expression language (JSON Logic and the like): every
 * denial must name its rule and say in plain words what failed ("VIP lounge opens at 18:00
 * Europe/Berlin"), which a boolean expression cannot; a policy that names a zone that does not
 * exist must be refused when it is written, not discovered at the door; and a gate decides in
 * milliseconds on a Raspberry Pi, so what a rule may ask is bounded and known in advance.
 */

const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/
const id = (what: string) =>
  z.string().regex(ID, `${what}: letters, digits, '-' and '_' only, at most 64 characters`)
const clock = z
  .string()
  .regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'a local time of day, HH:MM (00:00 to 23:59)')
const label = z.string().trim().min(1).max(100)

export const zoneSchema = z
  .object({
    id: id('zone id'),
    name: label,
    /** the most people inside at once; none: not counted against a limit */
    capacity: z.number().int().positive().max(10_000_000).optional(),
    /** what an entry gate does once the zone is full: deny, or admit and say so */
    whenFull: z.enum(['deny', 'warn']).default('deny'),
    /** a local time of day at which everyone inside is checked out (the nightly reset) */
    checkoutAt: clock.optional(),
  })
  .strict()
export type Zone = z.infer<typeof zoneSchema>

/**
 * A lane: what passing one gate means. `from` null: an entry from outside; `to` null: an exit to
 * outside; both: a transfer from one zone into another. Several gates may serve one zone.
 */
export const laneSchema = z
  .object({
    gate: id('gate id'),
    from: id('zone id').nullable().default(null),
    to: id('zone id').nullable().default(null),
  })
  .strict()
  .refine(
    (l) => l.from !== null || l.to !== null,
    'a lane leads somewhere: give it a from zone, a to zone, or both',
  )
  .refine((l) => l.from !== l.to, 'a lane cannot lead from a zone into itself')
export type Lane = z.infer<typeof laneSchema>

/**
 * A rule (a check-in list): who may enter `zone`, when, and how often. A participant matches when
 * their ticket category is in `categories` or one of their tags is in `tags` (a rule with neither
 * matches everyone). Entering a zone needs one matching rule whose conditions all hold.
 */
export const ruleSchema = z
  .object({
    id: id('rule id'),
    name: label,
    zone: id('zone id'),
    categories: z.array(label).max(100).optional(),
    tags: z.array(label).max(100).optional(),
    /** local dates (YYYY-MM-DD) the rule applies on; none: every day of the event */
    dates: z
      .array(z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a local date, YYYY-MM-DD'))
      .max(366)
      .optional(),
    /** weekdays the rule applies on; none: every day */
    days: z.array(z.enum(WEEKDAYS)).max(7).optional(),
    /** local time of day the zone opens for this rule; with `until` earlier, the window spans midnight */
    from: clock.optional(),
    /** local time of day it closes (exclusive) */
    until: clock.optional(),
    /** entries into the zone per local day */
    entriesPerDay: z.number().int().positive().max(1000).optional(),
    /** entries into the zone over the whole event */
    entriesTotal: z.number().int().positive().max(100_000).optional(),
    /** false: once in, never again (a second entry is denied even after an exit) */
    reentry: z.boolean().default(true),
    /** true: no second entry into the zone without an exit from it first, across all its gates */
    antiPassback: z.boolean().default(false),
  })
  .strict()
export type Rule = z.infer<typeof ruleSchema>

export const accessPolicySchema = z
  .object({
    /** raised by every change; decisions record the version they were made under */
    version: z.number().int().nonnegative(),
    /** the event's time zone: "per day" and times of day are its wall clock */
    timeZone: z.string().refine(isTimeZone, 'an IANA time zone this machine knows, e.g. Europe/Berlin'),
    zones: z.array(zoneSchema).max(500),
    lanes: z.array(laneSchema).max(5000),
    rules: z.array(ruleSchema).max(5000),
  })
  .strict()
  .superRefine((p, ctx) => {
    const problem = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: z.ZodIssueCode.custom, path, message })
    const zones = new Set<string>()
    p.zones.forEach((z, i) => {
      if (zones.has(z.id)) problem(['zones', i, 'id'], `zone ${z.id} is defined twice`)
      zones.add(z.id)
    })
    const gates = new Set<string>()
    p.lanes.forEach((l, i) => {
      if (gates.has(l.gate)) problem(['lanes', i, 'gate'], `gate ${l.gate} has two lanes; a gate serves one`)
      gates.add(l.gate)
      for (const end of ['from', 'to'] as const) {
        const zone = l[end]
        if (zone !== null && !zones.has(zone)) problem(['lanes', i, end], `no zone ${zone}`)
      }
    })
    const rules = new Set<string>()
    p.rules.forEach((r, i) => {
      if (rules.has(r.id)) problem(['rules', i, 'id'], `rule ${r.id} is defined twice`)
      rules.add(r.id)
      if (!zones.has(r.zone)) problem(['rules', i, 'zone'], `no zone ${r.zone}`)
      if ((r.from === undefined) !== (r.until === undefined))
        problem(
          ['rules', i, r.from === undefined ? 'from' : 'until'],
          'a time window needs both from and until',
        )
      if (r.from !== undefined && r.from === r.until)
        problem(
          ['rules', i, 'until'],
          'a window that closes when it opens is never open: leave both out for all day',
        )
    })
  })
export type AccessPolicy = z.infer<typeof accessPolicySchema>

/** A policy from its JSON form, or the reasons it is refused (each with where it is). */
export function parsePolicy(
  input: unknown,
): { ok: true; policy: AccessPolicy } | { ok: false; problems: string[] } {
  const r = accessPolicySchema.safeParse(input)
  if (r.success) return { ok: true, policy: r.data }
  return {
    ok: false,
    problems: r.error.issues.map((i) => `${i.path.length > 0 ? `${i.path.join('.')}: ` : ''}${i.message}`),
  }
}
