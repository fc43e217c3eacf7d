-- Up Migration

-- A check-in id is stored once, whatever its time. attendance_records is partitioned on ts, and
-- Postgres wants the partition key in every unique index of a partitioned table: its primary key
-- (id, ts) let the same id sent again with another time be stored twice. So the ids are kept once
-- more in this narrow table, unique on their own: the ingest writes a batch's ids here and its
-- records there in one transaction, and a resent id stops at this index (cloud/ingest/unique-ids.ts
-- tells a harmless resend from a conflicting one). Pruned with the partitions' retention.
CREATE TABLE checkin_ids (
  id uuid NOT NULL
);
-- the check-ins already stored; the index is built after the rows go in (faster than row by row)
INSERT INTO checkin_ids (id) SELECT DISTINCT id FROM attendance_records;
ALTER TABLE checkin_ids ADD CONSTRAINT checkin_ids_pkey PRIMARY KEY (id);

-- New incidents: a gate's records refused because their participant or token is of another event
-- (wrong_event), records stored but naming a participant the cloud does not know
-- (unknown_participant), and a check-in id sent again with another time or content (id_conflict).
ALTER TABLE incidents DROP CONSTRAINT incidents_kind_check;
ALTER TABLE incidents ADD CONSTRAINT incidents_kind_check CHECK (kind IN (
  'double_entry', 'clock_skew', 'late_upload', 'wrong_event', 'unknown_participant', 'id_conflict'));
-- like clock skew, these are one open incident per gate, counted up by every batch that shows
-- them: a misbehaving gate can send thousands of such records a minute, and one row each would let
-- it fill the table
CREATE UNIQUE INDEX incidents_open_per_gate_records ON incidents (kind, gate_id)
  WHERE kind IN ('wrong_event', 'unknown_participant', 'id_conflict') AND resolved_at IS NULL;

-- ids stored more than once before this migration: one open id_conflict incident per gate, so that
-- ops see them (both rows are kept: which one is right cannot be told from here)
INSERT INTO incidents (kind, gate_id, record_id, record_ts, detail)
SELECT DISTINCT ON (d.gate_id) 'id_conflict', d.gate_id, d.id, d.ts,
       jsonb_build_object('records', d.n, 'batches', 0, 'beforeMigration', true)
  FROM (SELECT a.id, a.ts, a.gate_id, count(*) OVER (PARTITION BY a.gate_id) AS n
          FROM attendance_records a
         WHERE a.id IN (SELECT id FROM attendance_records GROUP BY id HAVING count(*) > 1)) d
 ORDER BY d.gate_id, d.ts, d.id
ON CONFLICT DO NOTHING;

-- the event check looks up whether a participant was removed from the gate's event (a gate may
-- have admitted them before it pulled the removal)
CREATE INDEX roster_removals_participant ON roster_removals (participant_id);

-- Down Migration
DROP INDEX roster_removals_participant;
DELETE FROM incidents WHERE kind IN ('wrong_event', 'unknown_participant', 'id_conflict');
DROP INDEX incidents_open_per_gate_records;
ALTER TABLE incidents DROP CONSTRAINT incidents_kind_check;
ALTER TABLE incidents ADD CONSTRAINT incidents_kind_check CHECK (kind IN ('double_entry', 'clock_skew', 'late_upload'));
DROP TABLE checkin_ids;
