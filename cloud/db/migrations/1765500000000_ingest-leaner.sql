-- Up Migration

-- What each stored check-in costs Postgres, made smaller so that the arrivals the ingest now keeps
-- (a row per arriving participant) fit in what a record cost before them.
-- - attendance_method_ts: no query reads check-ins by method (the method is shown, never searched
--   for), yet every stored record paid an insert into it, in every partition.
-- - event_arrivals.record_id: an annulment recomputes its participant's arrival from the stored
--   check-ins (annulments are rare), so the arrival need not name its record.
DROP INDEX attendance_method_ts;
ALTER TABLE event_arrivals DROP COLUMN record_id;

-- Down Migration
ALTER TABLE event_arrivals ADD COLUMN record_id uuid;
UPDATE event_arrivals e SET record_id = a.id
  FROM attendance_records a
 WHERE a.participant_id = e.participant_id AND a.ts = e.first_at AND a.decision = 'admit';
CREATE INDEX attendance_method_ts ON attendance_records (method, ts DESC);
