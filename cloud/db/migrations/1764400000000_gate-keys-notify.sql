-- Up Migration

-- Every change to gate keys or gates (a revocation, a rotation, a gate moved to another event) tells
-- the cloud nodes (LISTEN gate_keys_changed): each drops its cache of checked keys, so a revoked
-- key stops working at once on every node, not when the cache entry expires.
CREATE FUNCTION gate_keys_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('gate_keys_changed', '');
  RETURN NULL;
END $$;
CREATE TRIGGER gate_keys_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON gate_keys
  FOR EACH STATEMENT EXECUTE FUNCTION gate_keys_notify();
CREATE TRIGGER gates_notify AFTER UPDATE OR DELETE OR TRUNCATE ON gates
  FOR EACH STATEMENT EXECUTE FUNCTION gate_keys_notify();

-- the roster a gate pulls is its event's: changes of one event, in sequence order
CREATE INDEX participants_event_seq ON participants (event_id, roster_seq);

-- Down Migration
DROP INDEX participants_event_seq;
DROP TRIGGER gates_notify ON gates;
DROP TRIGGER gate_keys_notify ON gate_keys;
DROP FUNCTION gate_keys_notify();
