-- Up Migration

-- An event (a conference, a festival). Gates and participants belong to one.
CREATE TABLE events (
  id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- A gate. Its API keys are in gate_keys, stored as SHA-256 of a 256-bit random secret.
CREATE TABLE gates (
  id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
  event_id    text REFERENCES events (id),
  name        text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz,
  -- the gate's clock minus the server's at its last batch, ms
  last_skew_ms bigint
);

CREATE TABLE gate_keys (
  key_id      text PRIMARY KEY CHECK (key_id ~ '^[a-z0-9]{12}$'),
  gate_id     text NOT NULL REFERENCES gates (id) ON DELETE CASCADE,
  secret_sha256 bytea NOT NULL CHECK (length(secret_sha256) = 32),
  created_at  timestamptz NOT NULL DEFAULT now(),
  -- a rotated key keeps working until this time (grace for a gate that has not picked up its new key)
  expires_at  timestamptz,
  revoked_at  timestamptz
);
CREATE INDEX gate_keys_gate ON gate_keys (gate_id);

-- Every change to a participant takes the next roster sequence number: gates pull "changes since N".
CREATE SEQUENCE roster_seq;

CREATE TABLE participants (
  id          text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  event_id    text REFERENCES events (id),
  token       text NOT NULL CHECK (token ~ '^[0-9a-f]{4,48}$'),
  status      text NOT NULL CHECK (status IN ('active', 'revoked', 'inactive')),
  name        text,
  email       text,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  roster_seq  bigint NOT NULL DEFAULT nextval('roster_seq')
);
-- one active holder per token (critical query 3)
CREATE UNIQUE INDEX participants_active_token ON participants (token) WHERE status = 'active';
-- full-text search over name and email
CREATE INDEX participants_fts ON participants
  USING gin (to_tsvector('english', coalesce(name, '') || ' ' || coalesce(email, '')));
CREATE INDEX participants_roster_seq ON participants (roster_seq);

CREATE FUNCTION participants_bump_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.token, NEW.status, NEW.name, NEW.email, NEW.event_id) IS DISTINCT FROM
     (OLD.token, OLD.status, OLD.name, OLD.email, OLD.event_id) THEN
    NEW.roster_seq := nextval('roster_seq');
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER participants_bump_seq BEFORE UPDATE ON participants
  FOR EACH ROW EXECUTE FUNCTION participants_bump_seq();

-- Check-ins as the gates made them, range-partitioned on the gate's decision time.
-- The primary key includes the partition key (Postgres requires it); ids are UUIDv7 made on the gate.
CREATE TABLE attendance_records (
  id              uuid NOT NULL,
  ts              timestamptz NOT NULL,
  gate_id         text NOT NULL,
  participant_id  text,
  token           text NOT NULL,
  method          text NOT NULL,
  decision        text NOT NULL CHECK (decision IN ('admit', 'deny')),
  reason          text CHECK (reason IN ('unknown', 'revoked', 'inactive', 'already_checked_in')),
  rssi            smallint,
  boot_id         uuid,
  boot_seq        bigint,
  mono_ms         double precision,
  roster_version  bigint,
  received_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, ts)
) PARTITION BY RANGE (ts);

-- nothing is ever refused for lack of a partition: late and far-future rows land here and the
-- partition manager moves them out when their partition is created
CREATE TABLE attendance_records_default PARTITION OF attendance_records DEFAULT;

-- the seed's three composite indexes, created on the parent (each partition gets its own)
CREATE INDEX attendance_participant_ts ON attendance_records (participant_id, ts DESC);
CREATE INDEX attendance_gate_ts ON attendance_records (gate_id, ts DESC);
CREATE INDEX attendance_method_ts ON attendance_records (method, ts DESC);

-- Things ops must look at: the same participant admitted at two gates that could not see each
-- other (offline), clock skew, late uploads.
CREATE TABLE incidents (
  id              bigserial PRIMARY KEY,
  kind            text NOT NULL CHECK (kind IN ('double_entry', 'clock_skew', 'late_upload')),
  gate_id         text NOT NULL,
  participant_id  text,
  record_id       uuid NOT NULL,
  record_ts       timestamptz NOT NULL,
  other_gate_id   text,
  other_record_id uuid,
  detail          jsonb NOT NULL DEFAULT '{}',
  created_at      timestamptz NOT NULL DEFAULT now(),
  resolved_at     timestamptz,
  UNIQUE (kind, record_id)
);
CREATE INDEX incidents_open ON incidents (created_at DESC) WHERE resolved_at IS NULL;

-- Down Migration
DROP TABLE incidents;
DROP TABLE attendance_records;
DROP TRIGGER participants_bump_seq ON participants;
DROP FUNCTION participants_bump_seq();
DROP TABLE participants;
DROP SEQUENCE roster_seq;
DROP TABLE gate_keys;
DROP TABLE gates;
DROP TABLE events;
