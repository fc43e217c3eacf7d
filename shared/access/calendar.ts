/**
 * Local time in an event's time zone: everything "per day" or "at 18:00" in the access rules is
 * the event's wall clock, never the gate's or the server's. Built on Intl (the time zone database
 * that ships with Node), with no dependency.
 */

/** A moment as the event's wall clock shows it. */
export interface LocalTime {
  /** the local date, YYYY-MM-DD: the key of "per day" counts */
  day: string
  /** 0 = Monday .. 6 = Sunday */
  weekday: number
  /** minutes since local midnight, 0..1439 */
  minutes: number
}

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const
export type Weekday = (typeof WEEKDAYS)[number]
const WEEKDAY_NAMES = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday']

/** Whether `tz` is a time zone this machine knows (an IANA name such as Europe/Berlin, or UTC). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return true
  } catch {
    return false
  }
}

interface Zone {
  format: Intl.DateTimeFormat
  /** the last minute converted, and what it gave: decisions come in bursts within one minute */
  minute: number
  last: LocalTime
}

const zones = new Map<string, Zone>()

/**
 * `ms` (since the epoch) on the wall clock of `tz`. Offsets are whole minutes in every zone in
 * use, so one conversion serves a whole minute.
 */
export function localTime(ms: number, tz: string): LocalTime {
  let zone = zones.get(tz)
  if (zone === undefined) {
    zone = {
      format: new Intl.DateTimeFormat('en-US', {
        timeZone: tz,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        weekday: 'short',
        hourCycle: 'h23',
      }),
      minute: Number.NaN,
      last: { day: '', weekday: 0, minutes: 0 },
    }
    zones.set(tz, zone)
  }
  const minute = Math.floor(ms / 60_000)
  if (minute === zone.minute) return zone.last
  const parts: Record<string, string> = {}
  for (const p of zone.format.formatToParts(minute * 60_000)) parts[p.type] = p.value
  const day = `${parts['year']}-${parts['month']}-${parts['day']}`
  const last: LocalTime = {
    // the same string as the minute before when the day has not changed: callers keep it (a gate's
    // ledger holds one per participant), and one shared string costs nothing
    day: day === zone.last.day ? zone.last.day : day,
    weekday: WEEKDAYS.indexOf((parts['weekday'] ?? '').slice(0, 3).toLowerCase() as Weekday),
    minutes: Number(parts['hour']) * 60 + Number(parts['minute']),
  }
  zone.minute = minute
  zone.last = last
  return last
}

/** "HH:MM" as minutes since midnight (the schema has checked the form). */
export function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':')
  return Number(h) * 60 + Number(m)
}

/** Minutes since midnight as "HH:MM". */
export function hhmm(minutes: number): string {
  const h = Math.floor(minutes / 60)
  const m = minutes % 60
  return `${h < 10 ? '0' : ''}${h}:${m < 10 ? '0' : ''}${m}`
}

/** A weekday index (0 = Monday) as its English name. */
export function weekdayName(weekday: number): string {
  return WEEKDAY_NAMES[weekday] ?? '?'
}
