-- Up Migration

-- gates_notify told every node to drop its cache of checked keys on any UPDATE of gates, and every
-- upload updates its gate's last_seen_at: the key cache was emptied by each batch, and each batch's
-- transaction carried a NOTIFY. A node caches a key's gate id and event id, so only changes to
-- those (and deletions) matter.
DROP TRIGGER gates_notify ON gates;
CREATE TRIGGER gates_notify AFTER UPDATE OF id, event_id OR DELETE OR TRUNCATE ON gates
  FOR EACH STATEMENT EXECUTE FUNCTION gate_keys_notify();

-- Down Migration
DROP TRIGGER gates_notify ON gates;
CREATE TRIGGER gates_notify AFTER UPDATE OR DELETE OR TRUNCATE ON gates
  FOR EACH STATEMENT EXECUTE FUNCTION gate_keys_notify();
