import type pg from 'pg'
import type { Checkin } from '../../shared/checkin.js'
import type { RecordIssue } from './record-incidents.js'
import type { RosterIndex } from './roster-index.js'

/**
 * Is each record of the gate's event? A gate decides offline from the roster it pulls, which holds
 * only its own event: a record naming a participant of another event (or carrying another event's
 * badge) can only come from a misbehaving or compromised gate, and stored it would count in the
 * other event, show in its participant's history and raise double entries against its gates.
 *
 * The common case, a participant of the gate's event holding the record's token, is one primary-key
 * probe per record and returns nothing: a named statement (planned once per connection), since it
 * runs for every batch. Denials of unknown badges carry no participant: a badge of another event
 * at this event's door is exactly that, and they are not sent.
 */
const CHECK_SQL = `
SELECT r.i::int - 1 AS i
  FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS r(pid, token, i)
  LEFT JOIN participants p ON p.id = r.pid
 WHERE p.id IS NULL OR p.token <> r.token OR p.event_id IS DISTINCT FROM (SELECT event_id FROM gates WHERE id = $1)`

/**
 * What the probe found (almost always nothing), looked at further: is the participant of the
 * event, was it removed from the event (moved or deleted after the gate pulled its roster: the gate
 * may well have decided before it heard), and is the token held now by a participant of another
 * event and by none of this one (a token is unique within an event only: one this event holds too
 * is not another event's badge).
 */
const SUSPECTS_SQL = `
WITH g AS (SELECT event_id FROM gates WHERE id = $1)
SELECT s.i::int - 1 AS i, p.id IS NOT NULL AS known, p.event_id AS "participantEvent", g.event_id AS "gateEvent",
       (p.id IS NOT NULL AND p.event_id IS NOT DISTINCT FROM g.event_id) AS "inEvent",
       EXISTS (SELECT 1 FROM roster_removals rr
                WHERE rr.participant_id = s.pid AND rr.event_id IS NOT DISTINCT FROM g.event_id) AS "leftEvent",
       t.held IS NOT NULL AS "tokenElsewhere", t.event_id AS "tokenEvent"
  FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS s(pid, token, i)
 CROSS JOIN g
  LEFT JOIN participants p ON p.id = s.pid
  LEFT JOIN LATERAL (
    SELECT true AS held, q.event_id FROM participants q
     WHERE q.token = s.token AND q.status = 'active' AND q.event_id IS DISTINCT FROM g.event_id
       AND NOT EXISTS (SELECT 1 FROM participants h
                        WHERE h.token = s.token AND h.status = 'active'
                          AND h.event_id IS NOT DISTINCT FROM g.event_id)
     LIMIT 1
  ) t ON true
 ORDER BY s.i`

interface SuspectRow {
  i: number
  known: boolean
  participantEvent: string | null
  gateEvent: string | null
  inEvent: boolean
  leftEvent: boolean
  tokenElsewhere: boolean
  tokenEvent: string | null
}

/** What the event check found: records to refuse (wrong_event) and records to store but flag (unknown_participant). */
export interface EventCheck {
  wrongEvent: RecordIssue[]
  unknownParticipant: RecordIssue[]
}

/** The gate's event (from its key) and this node's roster index: the check's fast path. */
export interface KnownRoster {
  eventId: string | null
  index: RosterIndex
}

/**
 * Check `records` (indexes: their places in the batch as sent) against the gate's event. Refused:
 * a participant of another event, or a token held by a participant of another event. Flagged, and
 * stored: a participant the cloud has never had (a roster given to the gate by other means, or a
 * made-up one: neither touches another event). Records the node's roster index knows are not
 * sent to Postgres at all.
 */
export async function checkEvent(
  pool: pg.Pool,
  gateId: string,
  records: readonly Checkin[],
  indexes: readonly number[],
  roster?: KnownRoster,
): Promise<EventCheck> {
  const out: EventCheck = { wrongEvent: [], unknownParticipant: [] }
  const sent: number[] = []
  for (let k = 0; k < records.length; k++) {
    const r = records[k] as Checkin
    if (
      r.participantId === null
        ? r.decision !== 'admit'
        : roster?.index.has(roster.eventId, r.participantId, r.token)
    )
      continue
    sent.push(k)
  }
  if (sent.length === 0) return out
  const probe = await pool.query<{ i: number }>({
    name: 'ingest-event-check',
    text: CHECK_SQL,
    values: [
      gateId,
      sent.map((k) => (records[k] as Checkin).participantId),
      sent.map((k) => (records[k] as Checkin).token),
    ],
  })
  if (probe.rows.length === 0) return out
  const suspects = probe.rows.map((row) => sent[row.i] as number).sort((a, b) => a - b)
  const rows = await pool.query<SuspectRow>(SUSPECTS_SQL, [
    gateId,
    suspects.map((k) => (records[k] as Checkin).participantId),
    suspects.map((k) => (records[k] as Checkin).token),
  ])
  for (const row of rows.rows) {
    const k = suspects[row.i] as number
    const record = records[k] as Checkin
    const issue = (field: 'participantId' | 'token', message: string): RecordIssue => ({
      index: indexes[k] as number,
      record,
      field,
      message,
      detail: {
        gateEvent: row.gateEvent,
        participantEvent: row.known ? row.participantEvent : undefined,
        tokenEvent: row.tokenElsewhere ? row.tokenEvent : undefined,
      },
    })
    const who = record.participantId === null ? 'no participant' : `participant ${record.participantId}`
    const foreignToken = `token ${record.token} is not of this gate's event`
    if (row.inEvent) {
      // the participant is, the badge another event's (a token changed since the gate pulled is fine)
      if (row.tokenElsewhere) out.wrongEvent.push(issue('token', foreignToken))
    } else if (row.leftEvent) {
      // removed after the gate's roster had them (their badge may be another event's by now): fine
    } else if (row.known) out.wrongEvent.push(issue('participantId', `${who} is not of this gate's event`))
    else if (row.tokenElsewhere) out.wrongEvent.push(issue('token', foreignToken))
    else
      out.unknownParticipant.push(
        issue('participantId', `${who} is not on the cloud's roster of this gate's event`),
      )
  }
  return out
}
