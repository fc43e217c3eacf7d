-- Up Migration

-- Incidents are handled by people: acknowledged ("someone is on it") and resolved with a note
-- saying what was done. Who did it is kept with each step. An incident the cloud resolves itself
-- (a clock back in bounds, a late exit found) has no resolved_by.
ALTER TABLE incidents
  ADD COLUMN acknowledged_at timestamptz,
  ADD COLUMN acknowledged_by text CHECK (length(acknowledged_by) <= 200),
  ADD COLUMN resolved_by text CHECK (length(resolved_by) <= 200),
  ADD COLUMN note text CHECK (length(note) <= 2000);

-- an event's incidents are its gates': listed by gate, newest first
CREATE INDEX incidents_gate_created ON incidents (gate_id, created_at DESC);

-- Down Migration
DROP INDEX incidents_gate_created;
ALTER TABLE incidents DROP COLUMN note, DROP COLUMN resolved_by, DROP COLUMN acknowledged_by,
  DROP COLUMN acknowledged_at;
