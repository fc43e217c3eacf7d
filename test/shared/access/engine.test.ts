import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { localTime } from '../../../shared/access/calendar.js'
import {
  AccessEngine,
  type AccessRequest,
  describeVerdict,
  type Holder,
} from '../../../shared/access/engine.js'
import { parsePolicy } from '../../../shared/access/policy.js'
import { berlin, PlainHistory, VENUE_JSON, venue } from './venue.js'

const guest: Holder = { participantId: 'p-1', category: 'standard', tags: [] }
const vip: Holder = { participantId: 'p-2', category: 'vip', tags: [] }
const speaker: Holder = { participantId: 'p-3', category: 'standard', tags: ['speaker'] }
const booked: Holder = { participantId: 'p-4', category: 'standard', tags: ['workshop'] }

function ask(
  engine: AccessEngine,
  gateId: string,
  holder: Holder,
  now: number,
  over: Partial<AccessRequest> = {},
) {
  return engine.evaluate({
    gateId,
    holder,
    history: new PlainHistory(),
    placesLeft: () => null,
    now,
    ...over,
  })
}

describe('the policy is checked when it is written', () => {
  it('refuses references to zones that do not exist, two lanes for a gate, half a window', () => {
    const r = parsePolicy({
      ...VENUE_JSON,
      lanes: [...VENUE_JSON.lanes, { gate: 'north-in', to: 'hall' }, { gate: 'x', to: 'garden' }],
      rules: [...VENUE_JSON.rules, { id: 'r9', name: 'Half', zone: 'hall', from: '10:00' }],
    })
    expect(r.ok).toBe(false)
    const problems = r.ok ? [] : r.problems
    expect(problems).toContain('lanes.6.gate: gate north-in has two lanes; a gate serves one')
    expect(problems).toContain('lanes.7.to: no zone garden')
    expect(problems).toContain('rules.3.until: a time window needs both from and until')
  })

  it('refuses a time zone the machine does not know and a lane from a zone into itself', () => {
    const r = parsePolicy({
      ...VENUE_JSON,
      timeZone: 'Mars/Olympus',
      lanes: [{ gate: 'g', from: 'hall', to: 'hall' }],
    })
    expect(r.ok).toBe(false)
    const text = r.ok ? '' : r.problems.join('\n')
    expect(text).toMatch(/timeZone: an IANA time zone/)
    expect(text).toMatch(/cannot lead from a zone into itself/)
  })
})

describe('entries, exits and transfers', () => {
  const engine = new AccessEngine(venue())

  it('admits a ticket holder into the hall and says where they are now', () => {
    const v = ask(engine, 'north-in', guest, berlin('10:00'))
    expect(v).toMatchObject({ decision: 'admit', ruleId: 'hall-all', enters: 'hall', leaves: null })
  })

  it('never refuses an exit, and says which zone was left', () => {
    const v = ask(engine, 'south-out', guest, berlin('03:00'))
    expect(v).toMatchObject({ decision: 'admit', enters: null, leaves: 'hall' })
  })

  it('a transfer leaves one zone and enters the other', () => {
    const v = ask(engine, 'vip-door', vip, berlin('19:00'))
    expect(v).toMatchObject({ decision: 'admit', ruleId: 'vip-evening', enters: 'vip', leaves: 'hall' })
  })

  it('denies at a gate the policy gives no lane, naming the gate and the version', () => {
    const v = ask(engine, 'side-door', guest, berlin('10:00'))
    expect(describeVerdict(v)).toBe('no_lane: gate side-door has no lane in access policy version 3')
  })
})

describe('every denial names its rule and says why', () => {
  const engine = new AccessEngine(venue())

  it('no matching rule: no access, with the category', () => {
    const v = ask(engine, 'vip-door', guest, berlin('19:00'))
    expect(v.ruleId).toBeNull()
    expect(describeVerdict(v)).toBe(
      'no_access: a participant with category standard has no access to VIP lounge',
    )
  })

  it('before the opening, in the event time zone', () => {
    const v = ask(engine, 'vip-door', vip, berlin('17:59'))
    expect(v.ruleId).toBe('vip-evening')
    expect(describeVerdict(v)).toBe('outside_time_window: VIP lounge opens at 18:00 Europe/Berlin')
  })

  it('a window across midnight is open after midnight and closed after it ends', () => {
    expect(ask(engine, 'vip-door', speaker, berlin('01:59', '2026-12-06')).decision).toBe('admit')
    const late = ask(engine, 'vip-door', speaker, berlin('02:00', '2026-12-06'))
    expect(describeVerdict(late)).toBe('outside_time_window: VIP lounge opens at 18:00 Europe/Berlin')
  })

  it('on a date the rule does not cover', () => {
    const v = ask(engine, 'workshop-door', booked, berlin('10:00', '2026-12-04'))
    expect(describeVerdict(v)).toBe(
      'outside_time_window: Workshop room is not open to Workshop bookings on 2026-12-04 (Europe/Berlin)',
    )
  })

  it('anti-passback: a second entry without an exit is denied, allowed again after the exit', () => {
    const h = new PlainHistory()
    const now = berlin('10:00')
    const first = ask(engine, 'north-in', guest, now, { history: h })
    h.apply(first, '2026-12-05')
    const again = ask(engine, 'south-in', guest, now + 60_000, { history: h })
    expect(describeVerdict(again)).toBe('anti_passback: already inside Main hall: an exit must come first')
    h.apply(ask(engine, 'south-out', guest, now + 120_000, { history: h }), '2026-12-05')
    expect(ask(engine, 'south-in', guest, now + 180_000, { history: h }).decision).toBe('admit')
  })

  it('entries per day count on the local day', () => {
    const h = new PlainHistory()
    h.apply(ask(engine, 'workshop-door', booked, berlin('09:00'), { history: h }), '2026-12-05')
    const v = ask(engine, 'workshop-door', booked, berlin('15:00'), { history: h })
    expect(describeVerdict(v)).toBe(
      'entries_per_day: 1 of 1 entries into Workshop room on 2026-12-05 already made',
    )
    expect(ask(engine, 'workshop-door', booked, berlin('09:00', '2026-12-06'), { history: h }).decision).toBe(
      'admit',
    )
  })

  it('a full zone denies, or admits with a warning when it is set to warn', () => {
    const full = ask(engine, 'vip-door', vip, berlin('19:00'), { placesLeft: () => 0 })
    expect(describeVerdict(full)).toBe('zone_full: VIP lounge is full (capacity 120)')
    const warned = ask(engine, 'workshop-door', booked, berlin('10:00'), { placesLeft: () => 0 })
    expect(warned.decision).toBe('admit')
    expect(describeVerdict(warned)).toBe('admit (zone_full: Workshop room is full (capacity 40))')
  })

  it('the first matching rule that admits wins; otherwise the first one that matched explains', () => {
    const policy = venue()
    policy.rules.push({
      id: 'vip-staff',
      name: 'Lounge staff',
      zone: 'vip',
      tags: ['staff'],
      reentry: true,
      antiPassback: false,
    })
    const e = new AccessEngine(policy)
    const staffSpeaker: Holder = { participantId: 'p-5', category: null, tags: ['speaker', 'staff'] }
    expect(ask(e, 'vip-door', staffSpeaker, berlin('12:00'))).toMatchObject({
      decision: 'admit',
      ruleId: 'vip-staff',
    })
    expect(ask(e, 'vip-door', speaker, berlin('12:00'))).toMatchObject({
      decision: 'deny',
      ruleId: 'vip-evening',
    })
  })
})

describe('the nightly checkout', () => {
  const engine = new AccessEngine(venue())

  it('the period of a zone is the local date of its last checkout', () => {
    expect(engine.period('hall', berlin('03:59', '2026-12-06'))).toBe('2026-12-05')
    expect(engine.period('hall', berlin('04:00', '2026-12-06'))).toBe('2026-12-06')
    // across a month and a year
    expect(engine.period('hall', berlin('01:00', '2027-01-01'))).toBe('2026-12-31')
    expect(engine.period('vip', berlin('01:00'))).toBe('')
  })
})

describe('local time', () => {
  it('follows daylight saving time in the event zone', () => {
    // 2026-03-29 01:30 UTC is 03:30 CEST in Berlin (the clocks went forward at 01:00 UTC)
    expect(localTime(Date.parse('2026-03-29T01:30:00Z'), 'Europe/Berlin')).toEqual({
      day: '2026-03-29',
      weekday: 6,
      minutes: 3 * 60 + 30,
    })
    expect(localTime(Date.parse('2026-03-29T00:30:00Z'), 'Europe/Berlin').minutes).toBe(60 + 30)
  })

  it('agrees with a fresh conversion at any moment, in any of a few zones', () => {
    const zones = ['Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe', 'UTC']
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.constantFrom(...zones), (ms, tz) => {
        const t = localTime(ms, tz)
        const parts = Object.fromEntries(
          new Intl.DateTimeFormat('en-GB', {
            timeZone: tz,
            year: 'numeric',
            month: '2-digit',
            day: '2-digit',
            hour: '2-digit',
            minute: '2-digit',
            hourCycle: 'h23',
          })
            .formatToParts(ms)
            .map((p) => [p.type, p.value]),
        )
        expect(t.day).toBe(`${parts['year']}-${parts['month']}-${parts['day']}`)
        expect(t.minutes).toBe(Number(parts['hour']) * 60 + Number(parts['minute']))
      }),
    )
  })
})

describe('properties of the engine', () => {
  const engine = new AccessEngine(venue())
  const gates = ['north-in', 'south-in', 'south-out', 'vip-door', 'vip-out', 'workshop-door', 'nowhere']
  const holder = fc.record({
    participantId: fc.constant('p'),
    category: fc.constantFrom(null, 'standard', 'vip'),
    tags: fc.subarray(['speaker', 'workshop', 'staff']),
  })
  const moment = fc.integer({ min: berlin('00:00', '2026-12-04'), max: berlin('23:59', '2026-12-07') })

  it('a denial always has a reason and an explanation; an admit has neither', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...gates),
        holder,
        moment,
        fc.integer({ min: -3, max: 5 }),
        (g, h, now, left) => {
          const v = ask(engine, g, h, now, { placesLeft: () => left })
          if (v.decision === 'deny') {
            expect(v.reason).not.toBeNull()
            expect(v.explanation?.length).toBeGreaterThan(10)
            expect(v.enters).toBeNull()
          } else {
            expect(v.reason).toBeNull()
            expect(v.explanation).toBeNull()
          }
        },
      ),
    )
  })

  it('no entry into a zone set to deny when full, whatever else holds', () => {
    fc.assert(
      fc.property(fc.constantFrom(...gates), holder, moment, (g, h, now) => {
        const v = ask(engine, g, h, now, { placesLeft: () => 0 })
        if (v.enters !== null) expect(engine.zone(v.enters)?.whenFull).toBe('warn')
      }),
    )
  })

  it('with anti-passback, a walk through the venue is never inside a zone twice', () => {
    const step = fc.record({
      gate: fc.constantFrom(...gates),
      dt: fc.integer({ min: 1_000, max: 3_600_000 }),
    })
    fc.assert(
      fc.property(holder, fc.array(step, { maxLength: 60, size: 'max' }), (h, steps) => {
        const history = new PlainHistory()
        let now = berlin('08:00')
        for (const s of steps) {
          now += s.dt
          const v = ask(engine, s.gate, h, now, { history })
          if (v.enters === 'hall' || v.enters === 'vip') expect(history.inside(v.enters)).toBe(false)
          if (v.decision === 'admit') history.apply(v, localTime(now, 'Europe/Berlin').day)
        }
      }),
    )
  })
})
