import { PassThrough } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import {
  arrivalCurve,
  attendanceSummary,
  eventInfo,
  latestDecisions,
} from '../../attendance/event-figures.js'
import { exportAttendanceCsv } from '../../attendance/export.js'
import { exportAttendanceParquet } from '../../attendance/export-parquet.js'
import { eventReport } from '../../attendance/report.js'
import { reinstateBadge, replaceBadge, revokeBadge } from '../../participants/badges.js'
import { eraseParticipant, setRetention } from '../../participants/privacy.js'
import { parseInput } from '../input.js'
import { requireAccess } from '../plugins/app/people-auth.js'
import { servePage } from '../static-page.js'

const EventParams = z.object({ eventId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/) })
const FeedQuery = z.object({ limit: z.coerce.number().int().min(1).max(200).default(25) })
const ParticipantParams = EventParams.extend({ id: z.string().min(1).max(128) })
const RetentionBody = z.object({ days: z.number().int().min(1).max(3650).nullable() }).strict()
const ReplaceBody = z
  .object({ token: z.string().regex(/^[0-9a-fA-F]{4,48}$/, 'a badge token: 4 to 48 hex digits') })
  .strict()

/**
 * The organiser's console: a static page (no secrets in it; the browser's session is an HttpOnly
 * cookie, or during the first set-up the ops token in the tab's sessionStorage) over the event's
 * figures, for the event's organisers and ops:
 * - GET /v1/query/events/:eventId/attendance: arrived against expected, the last hour by minute,
 *   denials by reason over 5 and 60 minutes, occupancy per zone;
 * - GET /v1/query/events/:eventId/arrivals: first arrivals by hour of the event's local time;
 * - GET /v1/query/events/:eventId/decisions?limit=N: the latest decisions as they sync;
 * - GET /v1/query/events/:eventId/export.csv: every check-in of the event, streamed (COPY TO);
 * - POST /v1/events/:eventId/participants/:id/revoke | reinstate | replace {token}: badge actions,
 *   at the gates from their next roster pull.
 * They read the primary: a decision synced a moment ago is there (a replica may lag).
 */
export async function consoleRoutes(app: FastifyInstance): Promise<void> {
  const { pool, perf } = app
  servePage(app, 'console')

  // the people who run an event open the cloud's address: attendance first, the fleet a link away
  app.get('/', async (_req, reply) => reply.redirect('/console'))

  await app.register(async (api) => {
    // an event's organisers and ops; the badge actions change the event, and every one is audited
    requireAccess(api, 'event-read')
    const write = { config: { access: 'event-write' as const } }
    api.get('/v1/query/events/:eventId/attendance', async (req) => {
      const { eventId } = parseInput(EventParams, req.params, 'query')
      return perf.time('query.event_attendance', () => attendanceSummary(pool, eventId, Date.now()))
    })
    api.get('/v1/query/events/:eventId/arrivals', async (req) => {
      const { eventId } = parseInput(EventParams, req.params, 'query')
      return perf.time('query.event_arrivals', () => arrivalCurve(pool, eventId))
    })
    api.get('/v1/query/events/:eventId/decisions', async (req) => {
      const { eventId } = parseInput(EventParams, req.params, 'query')
      const { limit } = parseInput(FeedQuery, req.query, 'query')
      return perf.time('query.event_decisions', () => latestDecisions(pool, eventId, limit, Date.now()))
    })
    api.post('/v1/events/:eventId/participants/:id/revoke', write, async (req) => {
      const { eventId, id } = parseInput(ParticipantParams, req.params)
      const participant = await revokeBadge(pool, eventId, id)
      await app.audit(req, 'badge.revoke', { eventId, target: id })
      return { participant }
    })
    api.post('/v1/events/:eventId/participants/:id/reinstate', write, async (req) => {
      const { eventId, id } = parseInput(ParticipantParams, req.params)
      const participant = await reinstateBadge(pool, eventId, id)
      await app.audit(req, 'badge.reinstate', { eventId, target: id })
      return { participant }
    })
    api.post('/v1/events/:eventId/participants/:id/replace', write, async (req) => {
      const { eventId, id } = parseInput(ParticipantParams, req.params)
      const { token } = parseInput(ReplaceBody, req.body)
      const participant = await replaceBadge(pool, eventId, id, token.toLowerCase())
      // the badge tokens are credentials: the trail says a badge was replaced, not with what
      await app.audit(req, 'badge.replace', { eventId, target: id })
      return { participant }
    })
    // privacy: one participant's name and e-mail erased on request; an event's retention
    api.post('/v1/events/:eventId/participants/:id/erase', write, async (req) => {
      const { eventId, id } = parseInput(ParticipantParams, req.params)
      const erased = await eraseParticipant(pool, eventId, id)
      await app.audit(req, 'participant.erase', { eventId, target: id })
      return { participant: erased }
    })
    api.put('/v1/events/:eventId/retention', write, async (req) => {
      const { eventId } = parseInput(EventParams, req.params)
      const { days } = parseInput(RetentionBody, req.body)
      const set = await setRetention(pool, eventId, days)
      await app.audit(req, 'retention.set', { eventId, detail: { days } })
      return set
    })
    api.get('/v1/query/events/:eventId/report', async (req) => {
      const { eventId } = parseInput(EventParams, req.params, 'query')
      return perf.time('query.event_report', () => eventReport(pool, eventId))
    })
    api.get('/v1/query/events/:eventId/export.parquet', async (req, reply) => {
      const { eventId } = parseInput(EventParams, req.params, 'query')
      await eventInfo(pool, eventId) // 404 before the download starts
      await app.audit(req, 'export.parquet', { eventId })
      const body = new PassThrough()
      exportAttendanceParquet(pool, eventId, body).catch((err: Error) => {
        req.log.warn({ err, eventId }, 'attendance export ended early')
        body.destroy(err)
      })
      return reply
        .type('application/vnd.apache.parquet')
        .header('Content-Disposition', `attachment; filename="attendance-${eventId}.parquet"`)
        .header('Cache-Control', 'no-store')
        .send(body)
    })
    api.get('/v1/query/events/:eventId/export.csv', async (req, reply) => {
      const { eventId } = parseInput(EventParams, req.params, 'query')
      await eventInfo(pool, eventId) // 404 before the download starts
      await app.audit(req, 'export.csv', { eventId })
      const body = new PassThrough()
      exportAttendanceCsv(pool, eventId, body).catch((err: Error) => {
        // headers are gone: the download ends short, and the log says why
        req.log.warn({ err, eventId }, 'attendance export ended early')
        body.destroy(err)
      })
      return reply
        .type('text/csv; charset=utf-8')
        .header('Content-Disposition', `attachment; filename="attendance-${eventId}.csv"`)
        .header('Cache-Control', 'no-store')
        .send(body)
    })
  })
}
