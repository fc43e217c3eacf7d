// The event console: what the people who run an event look at first. A static page over the
// query API (cloud/http/routes/console.ts), polled every second: a synced decision shows within
// two. Who is logged in, and how, is session.js's (loaded before this module); the participants
// and the incidents are modules of their own.
import { incidents } from './incidents.js'
import { participants } from './participants.js'
import { report } from './report.js'
import { $, el, fill, localTime, number, rect, row, why } from './ui.js'

const { api, Refused, Forbidden } = window.GateSession
let eventId = new URLSearchParams(location.search).get('event') ?? ''
let timer = null
let arrivalsAt = 0
let incidentsAt = 0
let timeZone = 'UTC'

const status = (state, text) => {
  $('status').dataset.state = state
  $('status').textContent = text
}

const showLogin = (message = '') => {
  clearInterval(timer)
  $('main').hidden = true
  $('who').hidden = true
  $('login').hidden = false
  $('login-error').textContent = message
}

/** An error of a request: a refusal asks to log in again, anything else is shown. */
const failed = (err) => {
  if (err instanceof Refused) return showLogin(err.message)
  status('error', err instanceof Forbidden ? `refused: ${err.message}` : err.message)
}

const ctx = { api, eventId: () => eventId, timeZone: () => timeZone, failed }
const people = participants(ctx)
const incidentList = incidents(ctx)
const eventReport = report(ctx)
let reportAt = 0

const renderSummary = (s) => {
  timeZone = s.timeZone
  $('arrived').textContent = number(s.arrived)
  $('expected').textContent = number(s.expected)
  const pct = s.expected > 0 ? Math.round((100 * s.arrived) / s.expected) : 0
  $('arrived-pct').textContent = s.expected > 0 ? `(${pct} %)` : ''
  $('arrived-bar').style.width = `${Math.min(100, pct)}%`
  $('timezone').textContent = `times in ${s.timeZone}`

  fill(
    $('zones'),
    s.zones.map((z) => {
      const bar = el('div', undefined, 'bar')
      const inner = el('div')
      const share = z.capacity ? Math.min(100, (100 * z.occupancy) / z.capacity) : 0
      inner.style.width = `${share}%`
      if (z.capacity && z.occupancy >= z.capacity) bar.classList.add('full')
      bar.append(inner)
      const cell = el('td')
      cell.append(bar)
      return row([
        el('td', z.name),
        el('td', number(z.occupancy), 'num'),
        el('td', z.capacity ?? 'none', 'num'),
        cell,
      ])
    }),
    4,
    'none: this event has no zones (no access policy)',
  )

  const reasons = [...new Set([...Object.keys(s.denials.last60), ...Object.keys(s.denials.last5)])].sort(
    (a, b) => (s.denials.last60[b] ?? 0) - (s.denials.last60[a] ?? 0),
  )
  fill(
    $('denials'),
    reasons.map((r) =>
      row([
        el('td', r),
        el('td', number(s.denials.last5[r] ?? 0), 'num'),
        el('td', number(s.denials.last60[r] ?? 0), 'num'),
      ]),
    ),
    3,
    'none in the last hour',
  )

  const svg = $('per-minute')
  svg.replaceChildren()
  const top = Math.max(1, ...s.perMinute.map((m) => m.admits + m.denials))
  const w = 600 / s.perMinute.length
  s.perMinute.forEach((m, i) => {
    const ha = (m.admits / top) * 118
    const hd = (m.denials / top) * 118
    const at = localTime(m.minute, timeZone)
    svg.append(rect(i * w + 1, 120 - ha, w - 2, ha, 'admit', `${at}: ${m.admits} admitted`))
    svg.append(rect(i * w + 1, 120 - ha - hd, w - 2, hd, 'deny', `${at}: ${m.denials} denied`))
  })
}

const renderFeed = (f) => {
  fill(
    $('feed'),
    f.decisions.map((d) =>
      row([
        el('td', localTime(d.ts, timeZone)),
        el('td', d.gateId),
        el('td', d.name ?? d.participantId ?? 'unknown badge'),
        el('td', d.annuls ? 'annulled' : d.decision, d.decision === 'admit' ? 'admit' : 'deny'),
        el('td', why(d)),
      ]),
    ),
    5,
    'none yet',
  )
}

const renderArrivals = (a) => {
  const svg = $('arrivals')
  svg.replaceChildren()
  if (a.hours.length === 0) {
    $('arrivals-range').textContent = 'none yet'
    return
  }
  const top = Math.max(1, ...a.hours.map((h) => h.arrivals))
  // a bar per hour, at most 40 units wide: a first hour alone is a bar, not a wall
  const w = Math.min(40, 600 / a.hours.length)
  a.hours.forEach((h, i) => {
    const height = (h.arrivals / top) * 118
    svg.append(rect(i * w + 1, 120 - height, w - 2, height, 'hour', `${h.hour}: ${h.arrivals} arrived`))
  })
  const first = a.hours[0].hour.replace('T', ' ')
  const last = a.hours[a.hours.length - 1].hour.replace('T', ' ')
  $('arrivals-range').textContent = `${first} to ${last} (${a.timeZone})`
}

const refresh = async () => {
  if (!eventId) return
  try {
    const base = `/v1/query/events/${encodeURIComponent(eventId)}`
    const [summary, feed] = await Promise.all([api(`${base}/attendance`), api(`${base}/decisions?limit=25`)])
    renderSummary(summary)
    renderFeed(feed)
    if (Date.now() - arrivalsAt > 10_000) {
      arrivalsAt = Date.now()
      renderArrivals(await api(`${base}/arrivals`))
    }
    // the report reads the zones' passages: every 10 s, with the arrivals
    if (Date.now() - reportAt > 10_000) {
      reportAt = Date.now()
      await eventReport.refresh()
    }
    // incidents every 5 s (and at once after an action): a note being typed is not redrawn away
    if (Date.now() - incidentsAt > 5_000 && !$('incidents').contains(document.activeElement)) {
      incidentsAt = Date.now()
      await incidentList.refresh()
    }
    status('live', `live, ${new Date().toLocaleTimeString('en-GB')}`)
  } catch (err) {
    if (err instanceof Refused) return showLogin(err.message)
    status('error', `not updating: ${err.message}`)
  }
}

const start = async () => {
  $('login').hidden = true
  try {
    const me = await window.GateSession.who()
    if (me === null) return showLogin()
    $('who').hidden = false
    $('who-name').textContent = `${me.actor} (${me.role})`
    // the fleet is for ops and technicians
    $('ops-link').hidden = me.role === 'organiser'
    const { events } = await api('/v1/query/events')
    const select = $('event')
    select.replaceChildren(
      ...events.map((e) => new Option(e.name === e.id ? e.id : `${e.name} (${e.id})`, e.id)),
    )
    if (events.length === 0) {
      status(
        'error',
        me.role === 'technician'
          ? 'a technician sees the fleet: open Ops'
          : 'no events yet: import a roster for one',
      )
      return
    }
    if (!events.some((e) => e.id === eventId)) eventId = events[0].id
    select.value = eventId
    $('main').hidden = false
    arrivalsAt = 0
    incidentsAt = 0
    await refresh()
    clearInterval(timer)
    timer = setInterval(refresh, 1_000)
  } catch (err) {
    failed(err)
  }
}

$('event').addEventListener('change', () => {
  eventId = $('event').value
  history.replaceState(null, '', `${location.pathname}?event=${encodeURIComponent(eventId)}`)
  arrivalsAt = 0
  incidentsAt = 0
  reportAt = 0
  people.reset()
  void refresh()
})
for (const id of ['incident-state', 'incident-kind'])
  $(id).addEventListener('change', () => {
    incidentsAt = 0
    void refresh()
  })
$('login').addEventListener('submit', async (e) => {
  e.preventDefault()
  const token = $('token').value.trim()
  try {
    if (token) window.GateSession.useToken(token)
    else await window.GateSession.logIn($('login-name').value.trim(), $('password').value)
    $('password').value = ''
    void start()
  } catch (err) {
    showLogin(err.message)
  }
})
$('logout').addEventListener('click', async () => {
  await window.GateSession.logOut()
  showLogin('Logged out.')
})
window.addEventListener('hashchange', () => {
  if (window.GateSession.tokenFromHash()) void start()
})

void start()
