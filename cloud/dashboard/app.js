// The ops dashboard (served by gate-cloud at /dashboard). Plain browser JavaScript, no build step:
// the live stream is Server-Sent Events read with fetch (the session cookie, or during the first
// set-up the ops token in the Authorization header, never in a URL: session.js), the charts are
// uPlot. Everything shown is set with textContent: gate ids and payloads come from the field and
// are never parsed as HTML.
// Longer than 300 lines on purpose: its parts (the stream, the rendering, the charts) share one
// closure's state; they are marked ---- below.
;(() => {
  const MAX_ROWS = 500
  const STATE_RANK = { offline: 0, stale: 1, online: 2 }
  const gates = new Map()
  const session = window.GateSession
  let selected = null
  let renderQueued = false
  let overview = null
  let charts = []
  let chartTimer = null
  let streamAbort = null

  const $ = (id) => document.getElementById(id)
  const el = (tag, text, cls) => {
    const e = document.createElement(tag)
    if (text !== undefined && text !== null) e.textContent = String(text)
    if (cls) e.className = cls
    return e
  }
  const num = (v, digits = 0) => (v === null || v === undefined ? '–' : Number(v).toFixed(digits))
  const ago = (ms) => {
    if (!ms) return '–'
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000))
    if (s < 60) return `${s} s ago`
    if (s < 3600) return `${Math.floor(s / 60)} min ago`
    return `${Math.floor(s / 3600)} h ago`
  }
  const secs = (s) => {
    if (s === null || s === undefined) return '–'
    if (s < 120) return `${Math.round(s)} s`
    if (s < 7200) return `${Math.round(s / 60)} min`
    return `${(s / 3600).toFixed(1)} h`
  }

  // ---- who is logged in (session.js) --------------------------------------------------------
  window.addEventListener('hashchange', () => {
    if (session.tokenFromHash()) start()
  })
  const showLogin = (message) => {
    $('main').hidden = true
    $('login').hidden = false
    $('login-error').textContent = message ?? ''
    setLink('down', 'signed out')
  }
  $('login').addEventListener('submit', async (e) => {
    e.preventDefault()
    const token = $('token').value.trim()
    try {
      if (token) session.useToken(token)
      else await session.logIn($('login-name').value.trim(), $('password').value)
      $('password').value = ''
      start()
    } catch (err) {
      showLogin(err.message)
    }
  })
  const api = async (url) => {
    const res = await fetch(url, { headers: session.headers() })
    if (res.status === 401 || res.status === 403) {
      showLogin(res.status === 403 ? 'The fleet is for ops and technicians.' : 'Log in to continue.')
      throw new Error('unauthorised')
    }
    const body = await res.json()
    if (!res.ok) throw new Error(body?.error?.message ?? `HTTP ${res.status}`)
    return body
  }

  const setLink = (state, text) => {
    const l = $('link')
    l.dataset.state = state
    l.textContent = text
  }

  // ---- the live stream (SSE over fetch) -------------------------------------------------------
  const onEvent = (event, data) => {
    if (event === 'fleet') {
      gates.clear()
      for (const g of data.gates) gates.set(g.id, g)
      $('fleet-note').textContent = data.enabled
        ? ''
        : 'The fleet monitor is off: set MQTT_URL on the service.'
    } else if (event === 'gates') {
      for (const g of data) gates.set(g.id, g)
    } else if (event === 'overview') {
      overview = data
    }
    scheduleRender()
  }

  const stream = async () => {
    let backoff = 1000
    for (;;) {
      streamAbort = new AbortController()
      try {
        const res = await fetch('/v1/dashboard/stream', {
          headers: session.headers({ accept: 'text/event-stream' }),
          signal: streamAbort.signal,
        })
        // the service's own words: a wrong token, an ended session
        const said = async (fallback) => (await res.json().catch(() => null))?.error?.message ?? fallback
        if (res.status === 401) return showLogin(await said('Log in to continue.'))
        if (res.status === 403) return showLogin('The fleet is for ops and technicians.')
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`)
        setLink('live', 'live')
        backoff = 1000
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
        let buf = ''
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          buf += value
          let cut = buf.indexOf('\n\n')
          while (cut >= 0) {
            const block = buf.slice(0, cut)
            buf = buf.slice(cut + 2)
            let event = 'message'
            let data = ''
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7)
              else if (line.startsWith('data: ')) data += line.slice(6)
            }
            if (data) onEvent(event, JSON.parse(data))
            cut = buf.indexOf('\n\n')
          }
        }
        throw new Error('the stream ended')
      } catch (err) {
        if (streamAbort.signal.aborted) return
        setLink('down', `reconnecting (${err.message})`)
        await new Promise((r) => setTimeout(r, backoff))
        backoff = Math.min(backoff * 2, 15_000)
      }
    }
  }

  // ---- rendering ------------------------------------------------------------------------------
  const scheduleRender = () => {
    if (renderQueued) return
    renderQueued = true
    requestAnimationFrame(() => {
      renderQueued = false
      renderFleet()
      renderOverview()
    })
  }

  const renderFleet = () => {
    const counts = { online: 0, stale: 0, offline: 0 }
    for (const g of gates.values()) counts[g.state] = (counts[g.state] ?? 0) + 1
    $('count-online').textContent = counts.online
    $('count-stale').textContent = counts.stale
    $('count-offline').textContent = counts.offline
    const f = $('filter').value.trim().toLowerCase()
    const rows = [...gates.values()]
      .filter(
        (g) =>
          !f || [g.id, g.state, g.version, g.adapter, g.lastEvent].some((x) => x?.toLowerCase().includes(f)),
      )
      .sort((a, b) => STATE_RANK[a.state] - STATE_RANK[b.state] || a.id.localeCompare(b.id))
    const body = document.createDocumentFragment()
    for (const g of rows.slice(0, MAX_ROWS)) {
      const tr = el('tr')
      tr.dataset.gate = g.id
      tr.dataset.state = g.state
      if (g.id === selected) tr.classList.add('selected')
      const cells = [
        [g.id],
        [g.state + (g.state === 'offline' && g.reason ? ` (${g.reason})` : ''), 'state'],
        [ago(g.lastSeenAt)],
        [num(g.advertsPerS, 1)],
        [num(g.pending), g.pending > 1000 ? 'warn' : ''],
        [secs(g.oldestPendingS), g.oldestPendingS > 600 ? 'warn' : ''],
        [secs(g.lastSyncS), g.lastSyncS > 900 ? 'warn' : ''],
        [num(g.temperatureC, 1), g.temperatureC > 75 ? 'warn' : ''],
        [num(g.cpuPercent)],
        [g.adapter ?? '–', g.adapter && g.adapter !== 'poweredOn' && g.adapter !== 'scanning' ? 'warn' : ''],
        [g.version ?? '–'],
        [g.seqGaps, g.seqGaps > 0 ? 'warn' : ''],
        [g.lastEvent ?? ''],
      ]
      for (const [text, cls] of cells) tr.append(el('td', text, cls))
      body.append(tr)
    }
    $('fleet-body').replaceChildren(body)
    $('fleet-note').textContent =
      rows.length > MAX_ROWS
        ? `showing ${MAX_ROWS} of ${rows.length} (problems first); filter to narrow`
        : `${rows.length} gate(s)`
  }

  const kv = (target, pairs) => {
    const frag = document.createDocumentFragment()
    for (const [k, v] of pairs) {
      frag.append(el('dt', k), el('dd', v))
    }
    target.replaceChildren(frag)
  }
  const pct = (v) => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(1)} %`)

  const renderOverview = () => {
    const o = overview
    if (!o) return
    if (o.error) {
      kv($('cloud'), [['overview', `unavailable: ${o.error}`]])
      return
    }
    const r = o.requests
    const auto = o.autoscaler?.last
    kv($('cloud'), [
      [
        'node',
        `${o.node.node}: ELU ${pct(o.node.elu)}, CPU ${num(o.node.cpuPercent)} %, ${o.node.inFlight} in flight`,
      ],
      [
        `requests (${o.windowSeconds} s)`,
        `${num(r.rate, 1)}/s, p50 ${num(r.p50Ms, 1)} ms, p95 ${num(r.p95Ms, 1)} ms, p99 ${num(r.p99Ms, 1)} ms, errors ${pct(r.errorRate)}`,
      ],
      [
        'database',
        `p50 ${num(o.db.p50Ms, 1)} ms, p99 ${num(o.db.p99Ms, 1)} ms, ${num(o.db.rate, 1)} queries/s`,
      ],
      ['pool', `${o.pool.total} connections, ${o.pool.idle} idle, ${o.pool.waiting} waiting`],
      [
        'cache hit rate',
        `overall ${pct(o.cache.overallHitRate)}, L1 ${pct(o.cache.l1.hitRate)}, L2 ${pct(o.cache.l2.hitRate)} (Redis circuit ${o.cache.circuit})`,
      ],
      [
        'read routing',
        o.replicas
          ? `${o.replicas.status.map((x) => `replica ${x.replica}: ${x.eligible ? 'in' : 'out'}, lag ${num(x.lagMs)} ms`).join(', ')}; ${o.replicas.primaryReads} reads on the primary`
          : 'primary only (no replicas configured)',
      ],
      [
        'router',
        !o.router
          ? 'not configured (ROUTER_URL)'
          : o.router.error
            ? o.router.error
            : o.router.upstreams
                .map(
                  (u) =>
                    `${u.load?.node ?? u.url}: ${u.ejected ? 'ejected' : u.fresh ? 'in' : 'no load report'}, ${u.outstanding} outstanding, ELU ${pct(u.load?.elu)}`,
                )
                .join('; '),
      ],
      [
        'autoscaler',
        o.autoscaler
          ? `${o.autoscaler.mode}${auto ? `: ${auto.current} → ${auto.desired} replica(s) (${auto.reason})` : ''}`
          : 'off',
      ],
      [
        'fleet messages',
        o.fleetMessages ? `${o.fleetMessages.messages} received, ${o.fleetMessages.garbage} invalid` : 'off',
      ],
    ])
    const rowsOf = (id, list, cols) => {
      const frag = document.createDocumentFragment()
      for (const x of list) {
        const tr = el('tr')
        for (const c of cols) tr.append(el('td', c(x)))
        frag.append(tr)
      }
      $(id).querySelector('tbody').replaceChildren(frag)
    }
    rowsOf('routes', o.routes ?? [], [
      (x) => x.route,
      (x) => num(x.rate, 1),
      (x) => num(x.p50Ms, 1),
      (x) => num(x.p95Ms, 1),
      (x) => num(x.p99Ms, 1),
      (x) => x.errors,
    ])
    rowsOf('queries', o.queries ?? [], [
      (x) => x.query,
      (x) => x.count,
      (x) => num(x.p50Ms, 1),
      (x) => num(x.p99Ms, 1),
    ])
    const firing = o.alerts?.firing ?? []
    $('count-alerts').textContent = firing.length
    const list = (id, items, text, cls) => {
      const frag = document.createDocumentFragment()
      for (const x of items) frag.append(el('li', text(x), cls?.(x)))
      if (items.length === 0)
        frag.append(el('li', id === 'alerts-firing' ? 'nothing firing' : 'none', 'note'))
      $(id).replaceChildren(frag)
    }
    list(
      'alerts-firing',
      firing,
      (a) => `${a.rule} since ${new Date(a.since).toLocaleTimeString()}`,
      () => 'sev-warning',
    )
    list(
      'alerts-recent',
      (o.alerts?.recent ?? []).slice(-10).reverse(),
      (a) => `${new Date(a.at).toLocaleTimeString()} ${a.state}: ${a.summary}`,
      (a) => `sev-${a.severity ?? 'info'}`,
    )
    const inc = o.incidents ?? {}
    $('count-incidents').textContent = inc.open ?? '–'
    rowsOf('incidents', inc.recent ?? [], [
      (x) => new Date(x.createdAt).toLocaleTimeString(),
      (x) => x.kind,
      (x) => x.participantId,
      (x) => `${x.gateId} / ${x.otherGateId ?? '–'}`,
    ])
  }

  // ---- a gate's charts --------------------------------------------------------------------------
  const CHARTS = [
    ['Adverts/s', 'advertsPerS', '#58a6ff'],
    ['Pending check-ins', 'pending', '#d29922'],
    ['Decisions/min', 'decisionsPerMin', '#2ea043'],
    ['Temperature °C', 'temperatureC', '#f85149'],
    ['CPU %', 'cpuPercent', '#a371f7'],
  ]
  const drawCharts = async () => {
    if (!selected) return
    const gateId = selected
    let h
    try {
      h = await api(`/v1/fleet/${encodeURIComponent(gateId)}/history?minutes=60`)
    } catch (err) {
      $('gate-note').textContent = `history unavailable: ${err.message}`
      return
    }
    if (gateId !== selected) return
    for (const c of charts) c.destroy()
    charts = []
    const box = $('charts')
    box.replaceChildren()
    const xs = h.ts.map((t) => t / 1000)
    for (const [title, key, stroke] of CHARTS) {
      const div = el('div')
      div.dataset.chart = key
      box.append(div)
      const width = Math.max(300, div.clientWidth - 8)
      charts.push(
        new uPlot(
          {
            title,
            width,
            height: 180,
            scales: { x: { time: true } },
            axes: [
              { stroke: '#8b98a5', grid: { stroke: '#2a3541' } },
              { stroke: '#8b98a5', grid: { stroke: '#2a3541' } },
            ],
            series: [{}, { label: title, stroke, width: 1.5, spanGaps: false }],
          },
          [xs, h[key]],
          div,
        ),
      )
    }
    $('gate-note').textContent = `${h.ts.length} report(s) in the last hour; redrawn every 15 s`
  }
  const selectGate = (id) => {
    selected = id
    $('gate-section').hidden = !id
    $('gate-title').textContent = id ?? ''
    clearInterval(chartTimer)
    if (id) {
      void drawCharts()
      chartTimer = setInterval(drawCharts, 15_000)
    }
    scheduleRender()
  }
  $('fleet-body').addEventListener('click', (e) => {
    const tr = e.target.closest('tr')
    if (tr?.dataset.gate) selectGate(tr.dataset.gate)
  })
  $('gate-close').addEventListener('click', () => selectGate(null))
  $('filter').addEventListener('input', scheduleRender)
  // "x s ago" moves on even when nothing arrives
  setInterval(scheduleRender, 5_000)

  // ---- start ----------------------------------------------------------------------------------
  const start = () => {
    $('login').hidden = true
    $('main').hidden = false
    streamAbort?.abort()
    void stream()
  }
  start()
})()
