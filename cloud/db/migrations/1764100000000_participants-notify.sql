-- Up Migration

-- Every statement that changes participants tells the cloud nodes (LISTEN participants_changed):
-- each drops its cached roster deltas and token look-ups, whatever made the change (an import,
-- the API, plain SQL). Delivered at commit; several in one transaction arrive as one.
CREATE FUNCTION participants_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('participants_changed', '');
  RETURN NULL;
END $$;
CREATE TRIGGER participants_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON participants
  FOR EACH STATEMENT EXECUTE FUNCTION participants_notify();

-- Down Migration
DROP TRIGGER participants_notify ON participants;
DROP FUNCTION participants_notify();
