// Incidents (acknowledge, resolve with a note, filter by state and kind) and the event's activity:
// the latest entries of the audit trail, who did what from where.
import { $, el, fill, localTime, row } from './ui.js'

const incidentState = (i) =>
  i.resolvedAt ? `resolved${i.resolvedBy ? '' : ' by the cloud'}` : i.acknowledgedAt ? 'acknowledged' : 'open'

/** `ctx`: { api, eventId(), timeZone(), failed(err) }. */
export function incidents(ctx) {
  const act = async (path, body) => {
    try {
      await ctx.api(path, { body })
      await refresh()
    } catch (err) {
      ctx.failed(err)
    }
  }

  const render = (list) => {
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
          el('td', localTime(i.createdAt, ctx.timeZone(), true)),
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

  const renderActivity = (trail) => {
    fill(
      $('activity'),
      trail.entries.map((e) => {
        const tr = row([
          el('td', localTime(e.at, ctx.timeZone(), true)),
          el('td', e.actor),
          el('td', e.action.replaceAll('.', ' ')),
          el('td', e.target ?? ''),
          el('td', e.outcome, e.outcome === 'done' ? '' : 'deny'),
          el('td', e.sourceIp ?? ''),
        ])
        tr.dataset.action = e.action
        return tr
      }),
      6,
      'none',
    )
  }

  const refresh = async () => {
    const q = new URLSearchParams({ event: ctx.eventId(), state: $('incident-state').value, limit: '50' })
    if ($('incident-kind').value) q.set('kind', $('incident-kind').value)
    const trail = new URLSearchParams({ event: ctx.eventId(), limit: '20' })
    const [list, activity] = await Promise.all([ctx.api(`/v1/incidents?${q}`), ctx.api(`/v1/audit?${trail}`)])
    render(list)
    renderActivity(activity)
  }

  return { refresh }
}
