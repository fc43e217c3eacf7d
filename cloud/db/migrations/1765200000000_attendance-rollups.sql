-- Up Migration

-- The organiser's figures, kept by the ingest as it stores check-ins (cloud/attendance/rollups.ts)
-- rather than scanned from attendance_records at every look: an event's summary and its arrival
-- curve stay fast at tens of millions of check-ins.

-- "per day", "by hour" and "today" are in the event's time zone (its access policy's, when it has one)
ALTER TABLE events ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';
UPDATE events e SET time_zone = p.policy->>'timeZone'
  FROM (SELECT DISTINCT ON (event_id) event_id, policy FROM access_policies ORDER BY event_id, version DESC) p
 WHERE p.event_id = e.id AND p.policy ? 'timeZone';

-- Decisions per minute, gate, decision and reason ('' for an admit). Counts only grow: each
-- stored check-in adds one, in the transaction that stores it, so a resent batch adds nothing.
CREATE TABLE decision_minutes (
  event_id  text NOT NULL REFERENCES events (id),
  minute    timestamptz NOT NULL,
  gate_id   text NOT NULL,
  decision  text NOT NULL CHECK (decision IN ('admit', 'deny')),
  reason    text NOT NULL DEFAULT '',
  n         bigint NOT NULL CHECK (n >= 0),
  PRIMARY KEY (event_id, minute, gate_id, decision, reason)
);

-- Who has arrived: each participant's first admit to the event that was not annulled.
CREATE TABLE event_arrivals (
  event_id        text NOT NULL REFERENCES events (id),
  participant_id  text NOT NULL,
  first_at        timestamptz NOT NULL,
  record_id       uuid NOT NULL,
  PRIMARY KEY (event_id, participant_id)
);
CREATE INDEX event_arrivals_first_at ON event_arrivals (event_id, first_at);
CREATE INDEX event_arrivals_record ON event_arrivals (record_id);

-- what is already stored, counted once (a gate's event is where its check-ins count)
INSERT INTO decision_minutes (event_id, minute, gate_id, decision, reason, n)
SELECT g.event_id, date_trunc('minute', a.ts), a.gate_id, a.decision, coalesce(a.reason, ''), count(*)
  FROM attendance_records a JOIN gates g ON g.id = a.gate_id
 WHERE g.event_id IS NOT NULL
 GROUP BY 1, 2, 3, 4, 5;

INSERT INTO event_arrivals (event_id, participant_id, first_at, record_id)
SELECT DISTINCT ON (g.event_id, a.participant_id) g.event_id, a.participant_id, a.ts, a.id
  FROM attendance_records a JOIN gates g ON g.id = a.gate_id
 WHERE g.event_id IS NOT NULL AND a.decision = 'admit' AND a.participant_id IS NOT NULL
   AND a.id NOT IN (SELECT annuls FROM attendance_records WHERE annuls IS NOT NULL)
 ORDER BY g.event_id, a.participant_id, a.ts, a.id;

-- Down Migration
DROP TABLE event_arrivals;
DROP TABLE decision_minutes;
ALTER TABLE events DROP COLUMN time_zone;
