// The event console: what the people who run an event look at first. A static page over the
// query API (cloud/http/routes/console.ts), polled every second: a synced decision shows within
// two. The token is taken once from #token=... (a fragment never reaches the server), kept in
// this tab's sessionStorage, and sent in the Authorization header only.
;(() => {
  const $ = (id) => document.getElementById(id)
  let token = sessionStorage.getItem('opsToken') ?? ''
  let eventId = new URLSearchParams(location.search).get('event') ?? ''
  let timer = null
  let arrivalsAt = 0
  let incidentsAt = 0
  let timeZone = 'UTC'

  const tokenFromHash = () => {
    const t = new URLSearchParams(location.hash.slice(1)).get('token')
    if (!t) return false
    token = t
    sessionStorage.setItem('opsToken', token)
    history.replaceState(null, '', location.pathname + location.search)
    return true
  }
  tokenFromHash()

  const status = (state, text) => {
    $('status').dataset.state = state
    $('status').textContent = text
  }

  const showLogin = (message = '') => {
    clearInterval(timer)
    $('main').hidden = true
    $('login').hidden = false
    $('login-error').textContent = message
  }

  class Refused extends Error {}

  const api = async (path, body) => {
    const res = await fetch(path, {
      headers: {
        authorization: `Bearer ${token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { method: 'POST', body: JSON.stringify(body) } : {}),
    })
    if (res.status === 401 || res.status === 403) throw new Refused('The token was refused.')
    if (!res.ok) {
      // the service's own words when it has some (a refused token for a badge, a 404)
      const said = await res.json().catch(() => null)
      throw new Error(said?.error?.message ?? `${path}: ${res.status}`)
    }
    return res.json()
  }

  // ---- rendering: text only through textContent, never markup built from data ----------------
  const el = (tag, text, cls) => {
    const e = document.createElement(tag)
    if (text !== undefined) e.textContent = String(text)
    if (cls) e.className = cls
    return e
  }
  const row = (cells) => {
    const tr = document.createElement('tr')
    for (const c of cells) tr.append(c)
    return tr
  }
  const fill = (table, rows, columns, empty) => {
    const body = table.tBodies[0]
    body.replaceChildren()
    if (rows.length === 0) {
      const td = el('td', empty, 'none')
      td.colSpan = columns
      body.append(row([td]))
      return
    }
    for (const r of rows) body.append(r)
  }
  const number = (n) => n.toLocaleString('en')
  const svgNs = 'http://www.w3.org/2000/svg'
  const rect = (x, y, w, h, cls, title) => {
    const r = document.createElementNS(svgNs, 'rect')
    r.setAttribute('x', x)
    r.setAttribute('y', y)
    r.setAttribute('width', Math.max(w, 0))
    r.setAttribute('height', Math.max(h, 0))
    r.setAttribute('class', cls)
    const t = document.createElementNS(svgNs, 'title')
    t.textContent = title
    r.append(t)
    return r
  }
  const localTime = (iso, withDate = false) =>
    new Date(iso).toLocaleString('en-GB', {
      timeZone,
      hour: '2-digit',
      minute: '2-digit',
      second: withDate ? undefined : '2-digit',
      ...(withDate ? { day: '2-digit', month: 'short' } : {}),
    })

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
      const at = localTime(m.minute)
      svg.append(rect(i * w + 1, 120 - ha, w - 2, ha, 'admit', `${at}: ${m.admits} admitted`))
      svg.append(rect(i * w + 1, 120 - ha - hd, w - 2, hd, 'deny', `${at}: ${m.denials} denied`))
    })
  }

  const renderFeed = (f) => {
    fill(
      $('feed'),
      f.decisions.map((d) =>
        row([
          el('td', localTime(d.ts)),
          el('td', d.gateId),
          el('td', d.name ?? d.participantId ?? 'unknown badge'),
          el('td', d.annuls ? 'annulled' : d.decision, d.decision === 'admit' ? 'admit' : 'deny'),
          el('td', d.explanation ?? d.reason ?? (d.method === 'manual' ? `by hand: ${d.actor ?? ''}` : '')),
        ]),
      ),
      5,
      'none yet',
    )
  }

  const incidentState = (i) =>
    i.resolvedAt
      ? `resolved${i.resolvedBy ? '' : ' by the cloud'}`
      : i.acknowledgedAt
        ? 'acknowledged'
        : 'open'

  const act = async (path, body) => {
    try {
      await api(path, body)
      await refreshIncidents()
    } catch (err) {
      if (err instanceof Refused) return showLogin(err.message)
      status('error', err.message)
    }
  }

  const renderIncidents = (list) => {
    fill(
      $('incidents'),
      list.incidents.map((i) => {
        const actions = el('td', undefined, 'actions')
        if (!i.resolvedAt) {
          if (!i.acknowledgedAt) {
            const ack = el('button', 'Acknowledge')
            ack.type = 'button'
            ack.dataset.action = 'acknowledge'
            ack.addEventListener('click', () => act(`/v1/incidents/${i.id}/acknowledge`, {}))
            actions.append(ack, ' ')
          }
          const note = el('input')
          note.placeholder = 'what was done'
          note.setAttribute('aria-label', `note for incident ${i.id}`)
          const resolve = el('button', 'Resolve')
          resolve.type = 'button'
          resolve.dataset.action = 'resolve'
          resolve.addEventListener('click', () => {
            if (!note.value.trim()) {
              note.focus()
              note.placeholder = 'a note is needed'
              return
            }
            void act(`/v1/incidents/${i.id}/resolve`, { note: note.value.trim() })
          })
          actions.append(note, ' ', resolve)
        }
        const tr = row([
          el('td', localTime(i.createdAt, true)),
          el('td', i.kind.replaceAll('_', ' ')),
          el('td', i.otherGateId ? `${i.gateId}, ${i.otherGateId}` : i.gateId),
          el('td', i.participantId ?? ''),
          el('td', incidentState(i)),
          el('td', i.note ?? ''),
          actions,
        ])
        tr.dataset.incident = String(i.id)
        return tr
      }),
      7,
      'none',
    )
  }

  const refreshIncidents = async () => {
    const q = new URLSearchParams({ event: eventId, state: $('incident-state').value, limit: '50' })
    if ($('incident-kind').value) q.set('kind', $('incident-kind').value)
    renderIncidents(await api(`/v1/incidents?${q}`))
  }

  // ---- participants: find one, see their history, act on their badge -------------------------
  let person = null

  const showPerson = async (p) => {
    person = p
    $('person').hidden = false
    $('person-name').textContent = `${p.name ?? p.id} (${p.id}), badge ${p.token}, ${p.status}`
    $('revoke').hidden = p.status === 'revoked'
    $('reinstate').hidden = p.status === 'active'
    const h = await api(`/v1/query/participants/${encodeURIComponent(p.id)}/checkins?limit=20`)
    fill(
      $('history'),
      h.checkins.map((c) =>
        row([
          el('td', localTime(c.ts, true)),
          el('td', c.gateId),
          el('td', c.annuls ? 'annulled' : c.decision, c.decision === 'admit' ? 'admit' : 'deny'),
          el('td', c.explanation ?? c.reason ?? (c.method === 'manual' ? `by hand: ${c.actor ?? ''}` : '')),
        ]),
      ),
      4,
      'none yet',
    )
  }

  const badgeAction = async (action, body) => {
    if (!person) return
    try {
      const r = await api(
        `/v1/events/${encodeURIComponent(eventId)}/participants/${encodeURIComponent(person.id)}/${action}`,
        body ?? {},
      )
      $('person-message').textContent = `${action}: done; the gates apply it at their next roster pull`
      await showPerson({ ...person, ...r.participant })
    } catch (err) {
      if (err instanceof Refused) return showLogin(err.message)
      $('person-message').textContent = `${action}: ${err.message}`
    }
  }

  $('search').addEventListener('submit', async (e) => {
    e.preventDefault()
    const q = new URLSearchParams({ q: $('search-q').value.trim(), event: eventId, limit: '20' })
    try {
      const r = await api(`/v1/query/participants?${q}`)
      $('found').hidden = false
      fill(
        $('found'),
        r.participants.map((p) => {
          const tr = row([
            el('td', p.name ?? p.id),
            el('td', p.email ?? ''),
            el('td', p.status),
            el('td', p.token),
          ])
          tr.dataset.participant = p.id
          tr.tabIndex = 0
          tr.addEventListener('click', () => void showPerson(p))
          tr.addEventListener('keydown', (k) => {
            if (k.key === 'Enter') void showPerson(p)
          })
          return tr
        }),
        4,
        'none',
      )
    } catch (err) {
      if (err instanceof Refused) return showLogin(err.message)
      status('error', err.message)
    }
  })
  $('revoke').addEventListener('click', () => badgeAction('revoke'))
  $('reinstate').addEventListener('click', () => badgeAction('reinstate'))
  $('replace').addEventListener('click', () => {
    const token = $('new-token').value.trim()
    if (!token) {
      $('person-message').textContent = 'replace: type the new badge token first'
      return
    }
    void badgeAction('replace', { token })
  })

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
      const [summary, feed] = await Promise.all([
        api(`${base}/attendance`),
        api(`${base}/decisions?limit=25`),
      ])
      renderSummary(summary)
      renderFeed(feed)
      if (Date.now() - arrivalsAt > 10_000) {
        arrivalsAt = Date.now()
        renderArrivals(await api(`${base}/arrivals`))
      }
      // incidents every 5 s (and at once after an action): a note being typed is not redrawn away
      if (Date.now() - incidentsAt > 5_000 && !$('incidents').contains(document.activeElement)) {
        incidentsAt = Date.now()
        await refreshIncidents()
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
      const { events } = await api('/v1/query/events')
      const select = $('event')
      select.replaceChildren(
        ...events.map((e) => new Option(e.name === e.id ? e.id : `${e.name} (${e.id})`, e.id)),
      )
      if (events.length === 0) {
        status('error', 'no events yet: import a roster for one')
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
      if (err instanceof Refused) return showLogin(err.message)
      status('error', err.message)
    }
  }

  $('event').addEventListener('change', () => {
    eventId = $('event').value
    history.replaceState(null, '', `${location.pathname}?event=${encodeURIComponent(eventId)}`)
    arrivalsAt = 0
    incidentsAt = 0
    void refresh()
  })
  for (const id of ['incident-state', 'incident-kind'])
    $(id).addEventListener('change', () => {
      incidentsAt = 0
      void refresh()
    })
  $('login').addEventListener('submit', (e) => {
    e.preventDefault()
    token = $('token').value.trim()
    sessionStorage.setItem('opsToken', token)
    void start()
  })

  window.addEventListener('hashchange', () => {
    if (tokenFromHash()) void start()
  })

  if (!token) showLogin()
  else void start()
})()
