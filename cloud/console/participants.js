// Participants: find one (part of a name, an e-mail domain, accents aside), see their history
// across the event's gates, act on their badge (revoke, reinstate, replace a lost one), check
// them out by hand, and erase their personal data on request.
import { $, clickable, el, fill, localTime, row, why } from './ui.js'

/**
 * `ctx`: { api, eventId(), timeZone(), failed(err) } — failed() handles a refusal (log in again)
 * or shows the error.
 */
export function participants(ctx) {
  let person = null

  const showPerson = async (p) => {
    person = p
    $('person').hidden = false
    $('person-name').textContent = `${p.name ?? p.id} (${p.id}), badge ${p.token}, ${p.status}`
    $('revoke').hidden = p.status === 'revoked'
    $('reinstate').hidden = p.status === 'active'
    const h = await ctx.api(`/v1/query/participants/${encodeURIComponent(p.id)}/checkins?limit=20`)
    fill(
      $('history'),
      h.checkins.map((c) =>
        row([
          el('td', localTime(c.ts, ctx.timeZone(), true)),
          el('td', c.gateId),
          el('td', c.annuls ? 'annulled' : c.decision, c.decision === 'admit' ? 'admit' : 'deny'),
          el('td', why(c)),
        ]),
      ),
      4,
      'none yet',
    )
  }

  const badgeAction = async (action, body) => {
    if (!person) return
    try {
      const r = await ctx.api(
        `/v1/events/${encodeURIComponent(ctx.eventId())}/participants/${encodeURIComponent(person.id)}/${action}`,
        { body: body ?? {} },
      )
      $('person-message').textContent =
        action === 'erase'
          ? 'erased: the name and e-mail are gone; the check-ins stay'
          : `${action}: done; the gates apply it at their next roster pull`
      await showPerson({
        ...person,
        ...r.participant,
        ...(action === 'erase' ? { name: null, email: null } : {}),
      })
    } catch (err) {
      $('person-message').textContent = `${action}: ${err.message}`
      ctx.failed(err)
    }
  }

  $('search').addEventListener('submit', async (e) => {
    e.preventDefault()
    const q = new URLSearchParams({ q: $('search-q').value.trim(), event: ctx.eventId(), limit: '20' })
    try {
      const r = await ctx.api(`/v1/query/participants?${q}`)
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
          return clickable(tr, () => void showPerson(p).catch(ctx.failed))
        }),
        4,
        'none',
      )
    } catch (err) {
      ctx.failed(err)
    }
  })
  $('erase').addEventListener('click', () => {
    if (!person) return
    // for good: the name and e-mail cannot be brought back
    if (!window.confirm(`Erase the name and e-mail of ${person.name ?? person.id}? Their check-ins stay.`))
      return
    void badgeAction('erase')
  })
  $('checkout').addEventListener('click', async () => {
    if (!person) return
    const note = $('checkout-note').value.trim()
    if (!note) {
      $('person-message').textContent = 'check out: say why first (they left by the fire exit, ...)'
      return
    }
    try {
      const r = await ctx.api(
        `/v1/events/${encodeURIComponent(ctx.eventId())}/participants/${encodeURIComponent(person.id)}/check-out`,
        { body: { note } },
      )
      $('person-message').textContent =
        `checked out by gate ${r.gateId}: out of ${r.checkin?.zoneOut ?? 'the zone'}`
      $('checkout-note').value = ''
      await showPerson(person)
    } catch (err) {
      $('person-message').textContent = `check out: ${err.message}`
      ctx.failed(err)
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

  return {
    /** another event was chosen: its participants are others */
    reset() {
      person = null
      $('person').hidden = true
      $('found').hidden = true
    },
  }
}
