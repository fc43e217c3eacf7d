-- Up Migration

-- An arrival (a participant's first admit to an event) is a row written in the transaction that
-- stores its check-in: on the ingest's hot path. Keyed by (event, participant) as text, Postgres
-- paid a comparison of both strings at every level of the key's b-tree for each arriving
-- participant; keyed first by a 64-bit hash of the pair, the comparisons are of integers, and the
-- texts after it keep the key exact. The hash says nothing about an event's range, so the counts
-- the console reads (how many arrived, and when) are kept per minute and gate instead, by the same
-- statement, in arrival_minutes: the summary and the curve read a few rows per minute.
CREATE FUNCTION arrival_key(event_id text, participant_id text) RETURNS bigint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN hashtextextended(event_id || chr(1) || participant_id, 0);

CREATE TABLE event_arrivals_keyed (
  k               bigint NOT NULL,
  participant_id  text NOT NULL,
  event_id        text NOT NULL,
  first_at        timestamptz NOT NULL,
  -- the arrival's time before an earlier admit moved it (a late upload): the minute it leaves
  prev_at         timestamptz,
  PRIMARY KEY (k, participant_id, event_id)
);
INSERT INTO event_arrivals_keyed (k, participant_id, event_id, first_at)
SELECT arrival_key(event_id, participant_id), participant_id, event_id, first_at FROM event_arrivals;
DROP TABLE event_arrivals;
ALTER TABLE event_arrivals_keyed RENAME TO event_arrivals;
ALTER INDEX event_arrivals_keyed_pkey RENAME TO event_arrivals_pkey;

-- Arrivals counted per minute and per gate of the batches that made them (a gate's own rows: the
-- gates' concurrent batches never wait on each other's). A count moved to an earlier minute, or
-- taken back by an annulment, is a negative count, so only an event's sum means anything.
CREATE TABLE arrival_minutes (
  event_id  text NOT NULL,
  minute    timestamptz NOT NULL,
  gate_id   text NOT NULL,
  n         bigint NOT NULL,
  PRIMARY KEY (event_id, minute, gate_id)
);
INSERT INTO arrival_minutes (event_id, minute, gate_id, n)
SELECT event_id, to_timestamp(floor(extract(epoch FROM first_at) / 60) * 60), '', count(*)
  FROM event_arrivals GROUP BY 1, 2;

-- Down Migration
DROP TABLE arrival_minutes;
CREATE TABLE event_arrivals_by_text (
  event_id        text NOT NULL,
  participant_id  text NOT NULL,
  first_at        timestamptz NOT NULL,
  PRIMARY KEY (event_id, participant_id)
);
INSERT INTO event_arrivals_by_text SELECT event_id, participant_id, first_at FROM event_arrivals;
DROP TABLE event_arrivals;
ALTER TABLE event_arrivals_by_text RENAME TO event_arrivals;
ALTER INDEX event_arrivals_by_text_pkey RENAME TO event_arrivals_pkey;
DROP FUNCTION arrival_key(text, text);
