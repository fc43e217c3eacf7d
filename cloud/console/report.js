// The event's report: what an organiser hands on after the doors close (arrivals, the busiest
// hour, decisions, denials by reason, each zone's peak), and the downloads: the check-ins as CSV
// or Parquet, and the report itself as JSON.
import { $, el, fill, number, row } from './ui.js'

/** `ctx`: { api, eventId(), failed(err) }; GateSession.download for the files. */
export function report(ctx) {
  const base = () => `/v1/query/events/${encodeURIComponent(ctx.eventId())}`
  const download = (path, name) => window.GateSession.download(path, name).catch(ctx.failed)

  $('export').addEventListener('click', () =>
    download(`${base()}/export.csv`, `attendance-${ctx.eventId()}.csv`),
  )
  $('export-parquet').addEventListener('click', () =>
    download(`${base()}/export.parquet`, `attendance-${ctx.eventId()}.parquet`),
  )
  $('export-report').addEventListener('click', () =>
    download(`${base()}/report`, `report-${ctx.eventId()}.json`),
  )

  const render = (r) => {
    const pct = r.expected > 0 ? ` (${Math.round((100 * r.arrived) / r.expected)} %)` : ''
    fill(
      $('report'),
      [
        ['Arrived', `${number(r.arrived)} of ${number(r.expected)}${pct}`],
        [
          'Busiest hour',
          r.busiestHour
            ? `${r.busiestHour.hour.replace('T', ' ')}: ${number(r.busiestHour.arrivals)} arrivals`
            : 'none yet',
        ],
        ['Admitted / denied', `${number(r.decisions.admits)} / ${number(r.decisions.denials)}`],
        [
          'Denials by reason',
          Object.entries(r.denialsByReason)
            .sort((a, b) => b[1] - a[1])
            .map(([reason, n]) => `${reason} ${number(n)}`)
            .join(', ') || 'none',
        ],
        [
          'Peak occupancy',
          r.peakOccupancy.map((z) => `${z.zone} ${number(z.peak)}`).join(', ') || 'none: no zones',
        ],
      ].map(([k, v]) => row([el('th', k), el('td', v)])),
      2,
      'none',
    )
  }

  return {
    async refresh() {
      render(await ctx.api(`${base()}/report`))
    },
  }
}
