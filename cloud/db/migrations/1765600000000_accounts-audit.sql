-- Up Migration

-- People who use the console and the API, each with a role:
-- - ops: the fleet, the cloud's internals and every event;
-- - organiser: the events they are given (attendance, participants, badges, incidents, exports);
-- - technician: the fleet (read) and commands to gates; no personal data.
-- Passwords are kept as scrypt hashes (salt and cost in the text), never in clear.
CREATE TABLE accounts (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  login          text NOT NULL UNIQUE CHECK (login ~ '^[a-z0-9][a-z0-9._@-]{1,63}$'),
  display_name   text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
  role           text NOT NULL CHECK (role IN ('ops', 'organiser', 'technician')),
  password_hash  text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  created_by     text NOT NULL,
  disabled_at    timestamptz
);

-- the events an organiser runs (an event's organisers see its data, no other event's)
CREATE TABLE account_events (
  account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  event_id    text NOT NULL REFERENCES events (id),
  PRIMARY KEY (account_id, event_id)
);

-- A logged-in browser: the cookie holds a random secret, the table only its SHA-256 (a copy of the
-- table does not log anyone in). Personal API tokens are kept the same way, with kind 'token'.
CREATE TABLE account_credentials (
  secret_hash   bytea PRIMARY KEY,
  account_id    uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  kind          text NOT NULL CHECK (kind IN ('session', 'token')),
  label         text CHECK (length(label) <= 200),
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz,
  last_used_at  timestamptz,
  created_from  text
);
CREATE INDEX account_credentials_account ON account_credentials (account_id);

-- Every action taken in the console or the API: who, what, when, from where. Append-only: the
-- trigger below refuses to change or delete a row, whoever asks.
CREATE TABLE audit_trail (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  actor      text NOT NULL,
  account_id uuid,
  role       text NOT NULL,
  action     text NOT NULL,
  target     text,
  event_id   text,
  source_ip  text,
  outcome    text NOT NULL CHECK (outcome IN ('done', 'refused', 'failed')),
  detail     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_trail_event_at ON audit_trail (event_id, at DESC);
CREATE INDEX audit_trail_at ON audit_trail (at DESC);

CREATE FUNCTION audit_trail_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit trail is append-only: % refused', TG_OP;
END $$;
CREATE TRIGGER audit_trail_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_trail
  FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_append_only();

-- Down Migration
DROP TABLE audit_trail;
DROP FUNCTION audit_trail_append_only();
DROP TABLE account_credentials;
DROP TABLE account_events;
DROP TABLE accounts;
