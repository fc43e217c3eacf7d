-- Up Migration

-- Roster writers take turns. A gate pulls "changes after roster_seq N", and a sequence number is
-- taken when a row is written, not when its transaction commits: with two writers at once, a
-- change with a lower number could commit after a gate had already moved its cursor past it, and
-- that gate would never see it (a revocation missed for good). Every statement that writes
-- participants first takes this transaction-level lock, so numbers are taken in commit order.
-- Imports and edits are rare and short; the sync path never writes participants.
CREATE FUNCTION participants_take_turn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('participants.roster_seq'));
  RETURN NULL;
END $$;
CREATE TRIGGER participants_take_turn BEFORE INSERT OR UPDATE OR DELETE ON participants
  FOR EACH STATEMENT EXECUTE FUNCTION participants_take_turn();

-- A participant deleted, or moved to another event, must leave the gates of the event it was in:
-- a removal is kept here, numbered like any change, and the gates of that event pull it as
-- 'inactive'.
CREATE TABLE roster_removals (
  event_id        text,
  participant_id  text NOT NULL,
  token           text NOT NULL,
  roster_seq      bigint NOT NULL,
  removed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX roster_removals_event_seq ON roster_removals (event_id, roster_seq);

CREATE FUNCTION participants_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO roster_removals (event_id, participant_id, token, roster_seq)
    VALUES (OLD.event_id, OLD.id, OLD.token, nextval('roster_seq'));
  ELSIF OLD.event_id IS DISTINCT FROM NEW.event_id THEN
    INSERT INTO roster_removals (event_id, participant_id, token, roster_seq)
    VALUES (OLD.event_id, OLD.id, OLD.token, NEW.roster_seq);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER participants_removed AFTER UPDATE OR DELETE ON participants
  FOR EACH ROW EXECUTE FUNCTION participants_removed();

-- Clock skew and late uploads are a gate's condition, not a record's: one open incident per gate
-- and kind, updated by every batch that shows it (a skewed gate syncing every second raised one
-- incident per batch). Older open ones of a gate are closed as superseded first.
UPDATE incidents i
   SET resolved_at = now(), detail = i.detail || '{"superseded": true}'
 WHERE i.kind IN ('clock_skew', 'late_upload') AND i.resolved_at IS NULL
   AND EXISTS (SELECT 1 FROM incidents j
                WHERE j.kind = i.kind AND j.gate_id = i.gate_id AND j.resolved_at IS NULL AND j.id > i.id);
CREATE UNIQUE INDEX incidents_open_per_gate ON incidents (kind, gate_id)
  WHERE kind IN ('clock_skew', 'late_upload') AND resolved_at IS NULL;

-- Down Migration
DROP INDEX incidents_open_per_gate;
DROP TRIGGER participants_removed ON participants;
DROP FUNCTION participants_removed();
DROP TABLE roster_removals;
DROP TRIGGER participants_take_turn ON participants;
DROP FUNCTION participants_take_turn();
