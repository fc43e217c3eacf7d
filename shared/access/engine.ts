import { hhmm, localTime, minutesOf, WEEKDAYS, weekdayName } from './calendar.js'
import type { AccessPolicy, Lane, Rule, Zone } from './policy.js'

/**
 * The access rules engine: one pure function of (policy, gate, participant, what they did before,
 * places left, time), run by the gate offline for every arrival and by the cloud for its checks
 * and "what would happen if" questions. It does no I/O: the caller supplies the participant's
 * history and the places left, each from its own store.
 */

/** Why the rules denied an entry. */
export type AccessDenyReason =
  /** the gate has no lane in the policy: it cannot know what passing it means */
  | 'no_lane'
  /** no rule of the zone matches the participant's category or tags */
  | 'no_access'
  | 'outside_time_window'
  /** already inside the zone: an exit must come first */
  | 'anti_passback'
  /** the rule allows one entry, already made */
  | 'no_reentry'
  | 'entries_per_day'
  | 'entries_total'
  | 'zone_full'

/** Who is at the gate, as the roster knows them. */
export interface Holder {
  participantId: string
  /** ticket category (e.g. "vip", "standard"); null: none */
  category: string | null
  tags: readonly string[]
}

/** What the caller knows of the participant's past, in the zones' current periods (see `period`). */
export interface History {
  /** whether they are inside the zone now (entered and not left since the last checkout) */
  inside(zone: string): boolean
  /** entries into the zone on a local day (YYYY-MM-DD) */
  entriesOn(zone: string, day: string): number
  /** entries into the zone over the event */
  entries(zone: string): number
}

/** Places a gate may still fill in a zone (its allotment of the capacity); null: no limit. */
export type PlacesLeft = (zone: string) => number | null

export interface AccessRequest {
  gateId: string
  holder: Holder
  history: History
  placesLeft: PlacesLeft
  /** ms since the epoch */
  now: number
}

/** The engine's answer. An admit may carry warnings (a full zone set to warn). */
export interface AccessVerdict {
  decision: 'admit' | 'deny'
  reason: AccessDenyReason | null
  /** the rule that admitted, or whose condition failed (null: no rule was involved) */
  ruleId: string | null
  /** what failed, in plain words (null for a plain admit) */
  explanation: string | null
  warnings: string[]
  /** the zone the participant is now in (null: outside, or unchanged) */
  enters: string | null
  /** the zone the participant has left (null: none) */
  leaves: string | null
}

/** A verdict as one line for logs and the CLI: `reason: explanation`. */
export function describeVerdict(v: AccessVerdict): string {
  if (v.decision === 'admit') return v.warnings.length > 0 ? `admit (${v.warnings.join('; ')})` : 'admit'
  return `${v.reason}: ${v.explanation}`
}

interface CompiledRule {
  rule: Rule
  categories: Set<string> | null
  tags: Set<string> | null
  dates: Set<string> | null
  /** bit d set: weekday d (0 = Monday) allowed; 127: every day */
  days: number
  from: number | null
  until: number | null
}

interface CompiledZone {
  zone: Zone
  rules: CompiledRule[]
  checkoutAt: number | null
}

const ONE_DAY_MS = 86_400_000

/**
 * A policy made ready to evaluate: its lanes by gate, its rules by zone, times of day as minutes.
 * Building one costs a pass over the policy; evaluating is a few map look-ups per arrival.
 */
export class AccessEngine {
  readonly version: number
  readonly timeZone: string
  private readonly lanes = new Map<string, Lane>()
  private readonly zones = new Map<string, CompiledZone>()

  constructor(readonly policy: AccessPolicy) {
    this.version = policy.version
    this.timeZone = policy.timeZone
    for (const zone of policy.zones)
      this.zones.set(zone.id, {
        zone,
        rules: [],
        checkoutAt: zone.checkoutAt === undefined ? null : minutesOf(zone.checkoutAt),
      })
    for (const lane of policy.lanes) this.lanes.set(lane.gate, lane)
    for (const rule of policy.rules)
      this.zones.get(rule.zone)?.rules.push({
        rule,
        categories: rule.categories ? new Set(rule.categories) : null,
        tags: rule.tags ? new Set(rule.tags) : null,
        dates: rule.dates ? new Set(rule.dates) : null,
        days: rule.days ? rule.days.reduce((m, d) => m | (1 << WEEKDAYS.indexOf(d)), 0) : 127,
        from: rule.from === undefined ? null : minutesOf(rule.from),
        until: rule.until === undefined ? null : minutesOf(rule.until),
      })
  }

  /** The lane gate `gateId` serves, if the policy gives it one. */
  lane(gateId: string): Lane | undefined {
    return this.lanes.get(gateId)
  }

  zone(zoneId: string): Zone | undefined {
    return this.zones.get(zoneId)?.zone
  }

  /**
   * The zone's current period at `now`: the local date of its last checkout (its `checkoutAt`
   * passed), or '' for a zone never reset. Presence and occupancy count within a period: at the
   * checkout, everyone inside is out.
   */
  period(zoneId: string, now: number): string {
    const at = this.zones.get(zoneId)?.checkoutAt ?? null
    if (at === null) return ''
    const t = localTime(now, this.timeZone)
    return t.minutes >= at ? t.day : previousDay(t.day)
  }

  /** Admit or deny passing gate `req.gateId`, and what it changes. */
  evaluate(req: AccessRequest): AccessVerdict {
    const lane = this.lanes.get(req.gateId)
    if (lane === undefined)
      return deny('no_lane', null, `gate ${req.gateId} has no lane in access policy version ${this.version}`)
    // leaving for outside is never refused: nobody is held in
    if (lane.to === null) return { ...ADMIT, leaves: lane.from }
    const target = this.zones.get(lane.to) as CompiledZone
    const name = target.zone.name
    const matching = target.rules.filter((r) => matches(r, req.holder))
    if (matching.length === 0) return deny('no_access', null, `${who(req.holder)} has no access to ${name}`)
    const t = localTime(req.now, this.timeZone)
    let refusal: AccessVerdict | null = null
    let admitting: CompiledRule | null = null
    for (const r of matching) {
      const failed = this.check(r, name, req.history, t)
      if (failed === null) {
        admitting = r
        break
      }
      // the first matching rule's reason is the one given: rules are listed most specific first
      refusal ??= failed
    }
    if (admitting === null) return refusal as AccessVerdict
    const left = req.placesLeft(target.zone.id)
    const warnings: string[] = []
    if (left !== null && left <= 0) {
      const full = `${name} is full${target.zone.capacity === undefined ? '' : ` (capacity ${target.zone.capacity})`}`
      if (target.zone.whenFull === 'deny') return deny('zone_full', admitting.rule.id, full)
      warnings.push(`zone_full: ${full}`)
    }
    return {
      decision: 'admit',
      reason: null,
      ruleId: admitting.rule.id,
      explanation: null,
      warnings,
      enters: target.zone.id,
      leaves: lane.from,
    }
  }

  /** The first condition of rule `r` that fails now, or null when it admits. */
  private check(
    r: CompiledRule,
    zoneName: string,
    history: History,
    t: ReturnType<typeof localTime>,
  ): AccessVerdict | null {
    const rule = r.rule
    const tz = this.timeZone
    if (r.dates !== null && !r.dates.has(t.day))
      return deny(
        'outside_time_window',
        rule.id,
        `${zoneName} is not open to ${rule.name} on ${t.day} (${tz})`,
      )
    if ((r.days & (1 << t.weekday)) === 0)
      return deny(
        'outside_time_window',
        rule.id,
        `${zoneName} is not open to ${rule.name} on ${weekdayName(t.weekday)}s (${tz})`,
      )
    if (r.from !== null && r.until !== null && !within(t.minutes, r.from, r.until)) {
      // before the opening, or after the closing (for a window across midnight, closed in between)
      const opensNext = r.from < r.until ? t.minutes < r.from : true
      return deny(
        'outside_time_window',
        rule.id,
        opensNext
          ? `${zoneName} opens at ${hhmm(r.from)} ${tz}`
          : `${zoneName} closed at ${hhmm(r.until)} ${tz}`,
      )
    }
    const zone = rule.zone
    if (rule.antiPassback && history.inside(zone))
      return deny('anti_passback', rule.id, `already inside ${zoneName}: an exit must come first`)
    const total = history.entries(zone)
    if (!rule.reentry && total > 0)
      return deny('no_reentry', rule.id, `${rule.name} allows one entry into ${zoneName}, already made`)
    if (rule.entriesTotal !== undefined && total >= rule.entriesTotal)
      return deny(
        'entries_total',
        rule.id,
        `${total} of ${rule.entriesTotal} entries into ${zoneName} over the event already made`,
      )
    if (rule.entriesPerDay !== undefined) {
      const today = history.entriesOn(zone, t.day)
      if (today >= rule.entriesPerDay)
        return deny(
          'entries_per_day',
          rule.id,
          `${today} of ${rule.entriesPerDay} entries into ${zoneName} on ${t.day} already made`,
        )
    }
    return null
  }
}

const ADMIT: AccessVerdict = Object.freeze({
  decision: 'admit',
  reason: null,
  ruleId: null,
  explanation: null,
  warnings: [],
  enters: null,
  leaves: null,
}) as AccessVerdict

function deny(reason: AccessDenyReason, ruleId: string | null, explanation: string): AccessVerdict {
  return { decision: 'deny', reason, ruleId, explanation, warnings: [], enters: null, leaves: null }
}

function matches(r: CompiledRule, h: Holder): boolean {
  if (r.categories === null && r.tags === null) return true
  if (r.categories !== null && h.category !== null && r.categories.has(h.category)) return true
  if (r.tags !== null) for (const tag of h.tags) if (r.tags.has(tag)) return true
  return false
}

function who(h: Holder): string {
  const parts: string[] = []
  if (h.category !== null) parts.push(`category ${h.category}`)
  if (h.tags.length > 0) parts.push(`tags ${h.tags.join(', ')}`)
  return parts.length > 0
    ? `a participant with ${parts.join(' and ')}`
    : 'a participant with no category or tag'
}

/** Whether minute `m` of the day is in [from, until), a window that may span midnight. */
function within(m: number, from: number, until: number): boolean {
  return from < until ? m >= from && m < until : m >= from || m < until
}

/** The last day asked about and the day before it (one string for all the callers of a day). */
let dayBefore = { day: '', previous: '' }

/** The local date before `day` (YYYY-MM-DD), calendar arithmetic only. */
function previousDay(day: string): string {
  if (dayBefore.day !== day)
    dayBefore = {
      day,
      previous: new Date(Date.parse(`${day}T00:00:00Z`) - ONE_DAY_MS).toISOString().slice(0, 10),
    }
  return dayBefore.previous
}
