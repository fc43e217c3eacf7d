// The console's small rendering helpers. Text goes in through textContent only, never markup
// built from data: names and notes come from people and gates.

export const $ = (id) => document.getElementById(id)

export const el = (tag, text, cls) => {
  const e = document.createElement(tag)
  if (text !== undefined) e.textContent = String(text)
  if (cls) e.className = cls
  return e
}

export const row = (cells) => {
  const tr = document.createElement('tr')
  for (const c of cells) tr.append(c)
  return tr
}

/** A table's rows, or one row saying `empty` across its `columns`. */
export const fill = (table, rows, columns, empty) => {
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

/** A row that opens something: it looks clickable, and Enter opens it too. */
export const clickable = (tr, open) => {
  tr.tabIndex = 0
  tr.classList.add('clickable')
  tr.addEventListener('click', open)
  tr.addEventListener('keydown', (k) => {
    if (k.key === 'Enter') open()
  })
  return tr
}

export const number = (n) => n.toLocaleString('en')

const svgNs = 'http://www.w3.org/2000/svg'
export const rect = (x, y, w, h, cls, title) => {
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

/** A time in the event's time zone: hh:mm:ss, or day, month and hh:mm. */
export const localTime = (iso, timeZone, withDate = false) =>
  new Date(iso).toLocaleString('en-GB', {
    timeZone,
    hour: '2-digit',
    minute: '2-digit',
    second: withDate ? undefined : '2-digit',
    ...(withDate ? { day: '2-digit', month: 'short' } : {}),
  })

/** What a check-in's "why" column says. */
export const why = (c) =>
  c.explanation ?? c.reason ?? (c.method === 'manual' ? `by hand: ${c.actor ?? ''}` : '')
