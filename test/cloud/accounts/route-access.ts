import type { Access } from '../../../cloud/accounts/principal.js'

/**
 * What every route of the people's API asks of its caller. A new route must be added here: the
 * test fails while the app has a route this table does not name, so that none is public by mistake.
 */
export const EXPECTED: Record<string, Access> = {
  'GET /v1/query/participants/:id/checkins': 'event-read',
  'GET /v1/query/gates/:id/count': 'fleet-read',
  'GET /v1/query/gates/counts': 'fleet-read',
  'GET /v1/query/tokens/:token': 'ops',
  'GET /v1/query/stats': 'ops',
  'GET /v1/query/gates': 'fleet-read',
  'GET /v1/query/events': 'signed-in',
  'GET /v1/query/participants': 'event-read',
  'GET /v1/incidents': 'event-read',
  'GET /v1/fleet': 'fleet-read',
  'POST /v1/fleet/:gateId/commands': 'fleet-command',
  'GET /v1/fleet/:gateId': 'fleet-read',
  'GET /v1/perf': 'ops',
  'GET /v1/alerts': 'ops',
  'GET /v1/perf/suggestions': 'ops',
  'GET /v1/dashboard/stream': 'fleet-read',
  'GET /v1/fleet/:gateId/history': 'fleet-read',
  'PUT /v1/events/:eventId/access-policy': 'event-write',
  'GET /v1/events/:eventId/access-policy': 'event-read',
  'POST /v1/events/:eventId/access-policy/evaluate': 'event-read',
  'GET /v1/query/events/:eventId/occupancy': 'event-read',
  'GET /v1/query/events/:eventId/attendance': 'event-read',
  'GET /v1/query/events/:eventId/arrivals': 'event-read',
  'GET /v1/query/events/:eventId/decisions': 'event-read',
  'POST /v1/events/:eventId/participants/:id/revoke': 'event-write',
  'POST /v1/events/:eventId/participants/:id/reinstate': 'event-write',
  'POST /v1/events/:eventId/participants/:id/replace': 'event-write',
  'GET /v1/query/events/:eventId/export.csv': 'event-read',
  'GET /v1/query/events/:eventId/export.parquet': 'event-read',
  'POST /v1/events/:eventId/participants/:id/erase': 'event-write',
  'POST /v1/events/:eventId/participants/:id/check-out': 'event-write',
  'PUT /v1/events/:eventId/retention': 'event-write',
  'GET /v1/query/events/:eventId/report': 'event-read',
  'POST /v1/incidents/:id/acknowledge': 'event-write',
  'POST /v1/incidents/:id/resolve': 'event-write',
  'GET /v1/session': 'signed-in',
  'DELETE /v1/session': 'signed-in',
  'POST /v1/session/tokens': 'signed-in',
  'GET /v1/accounts': 'ops',
  'POST /v1/accounts': 'ops',
  'POST /v1/accounts/:id/disable': 'ops',
  'GET /v1/audit': 'event-read',
}

/** The routes without a person's access: public, or a gate's (its own key, test/cloud/http). */
export const PUBLIC_OR_GATES = [
  // the pages hold no data: they ask the API, as whoever is logged in
  'GET /',
  'GET /console',
  'GET /console/app.css',
  'GET /console/app.js',
  'GET /console/incidents.js',
  'GET /console/participants.js',
  'GET /console/report.js',
  'GET /console/session.js',
  'GET /console/ui.js',
  'GET /dashboard',
  'GET /dashboard/app.css',
  'GET /dashboard/app.js',
  'GET /dashboard/session.js',
  'GET /dashboard/uplot.css',
  'GET /dashboard/uplot.js',
  // probes, the router's load and Prometheus' scrape (kept on the cluster's network)
  'GET /healthz',
  'GET /metrics',
  'GET /readyz',
  'GET /v1/load',
  // a gate's, with its own key
  'GET /v1/access-policy',
  'GET /v1/roster',
  'POST /v1/sync/checkins',
  'POST /v1/sync/occupancy',
  // logging in
  'POST /v1/session',
]

/** Which roles each access admits (an organiser: for their own event). */
export const ADMITS: Record<Access, ReadonlyArray<'ops' | 'organiser' | 'technician'>> = {
  ops: ['ops'],
  'fleet-read': ['ops', 'technician'],
  'fleet-command': ['ops', 'technician'],
  'event-read': ['ops', 'organiser'],
  'event-write': ['ops', 'organiser'],
  'signed-in': ['ops', 'organiser', 'technician'],
}
