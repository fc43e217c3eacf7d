-- Up Migration

-- The rollups are written in the transaction that stores each batch, a row per arriving
-- participant: what each of those rows costs is on the ingest's hot path.
-- - The references to events: each inserted row's check took a KEY SHARE lock on the event's row,
--   which every gate's concurrent batch shares, so Postgres made a MultiXact for it at each
--   insert; the ingest's Postgres CPU per record nearly doubled. The event id comes from the
--   gate's key, and these rows are derived from check-ins that are already checked, so the
--   references go (the events are never deleted).
-- - The arrival curve reads all of an event's rows anyway (its primary key's range), and an
--   annulment finds its arrival by participant (the annulling record names them), so the two
--   other indexes of event_arrivals go too.
ALTER TABLE event_arrivals DROP CONSTRAINT event_arrivals_event_id_fkey;
ALTER TABLE decision_minutes DROP CONSTRAINT decision_minutes_event_id_fkey;
DROP INDEX event_arrivals_first_at;
DROP INDEX event_arrivals_record;

-- Down Migration
CREATE INDEX event_arrivals_record ON event_arrivals (record_id);
CREATE INDEX event_arrivals_first_at ON event_arrivals (event_id, first_at);
ALTER TABLE decision_minutes ADD CONSTRAINT decision_minutes_event_id_fkey FOREIGN KEY (event_id) REFERENCES events (id);
ALTER TABLE event_arrivals ADD CONSTRAINT event_arrivals_event_id_fkey FOREIGN KEY (event_id) REFERENCES events (id);
