-- Up Migration

-- The access model: participants carry a ticket category and tags, an event has an access policy
-- (zones, lanes, rules: shared/access/policy.ts), versioned, and gates deny with the rules'
-- reasons.

ALTER TABLE participants ADD COLUMN category text CHECK (length(category) BETWEEN 1 AND 100);
ALTER TABLE participants ADD COLUMN tags text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 50);

-- a change of category or tags is a roster change the gates must pull, like a token or a status
CREATE OR REPLACE FUNCTION participants_bump_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.token, NEW.status, NEW.name, NEW.email, NEW.event_id, NEW.category, NEW.tags) IS DISTINCT FROM
     (OLD.token, OLD.status, OLD.name, OLD.email, OLD.event_id, OLD.category, OLD.tags) THEN
    NEW.roster_seq := nextval('roster_seq');
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END $$;

-- Every version of an event's policy is kept (a decision records the version it was made under);
-- the highest is the one in force. Written whole, checked by the same schema the gates use.
CREATE TABLE access_policies (
  event_id    text NOT NULL REFERENCES events (id),
  version     integer NOT NULL CHECK (version >= 1),
  policy      jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, version)
);

-- the rules' reasons for a denial
ALTER TABLE attendance_records DROP CONSTRAINT attendance_records_reason_check;
ALTER TABLE attendance_records ADD CONSTRAINT attendance_records_reason_check CHECK (reason IN (
  'unknown', 'revoked', 'inactive', 'already_checked_in', 'no_lane', 'no_access', 'outside_time_window',
  'anti_passback', 'no_reentry', 'entries_per_day', 'entries_total', 'zone_full'));

-- Down Migration
ALTER TABLE attendance_records DROP CONSTRAINT attendance_records_reason_check;
ALTER TABLE attendance_records ADD CONSTRAINT attendance_records_reason_check CHECK (reason IN (
  'unknown', 'revoked', 'inactive', 'already_checked_in'));
DROP TABLE access_policies;
CREATE OR REPLACE FUNCTION participants_bump_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.token, NEW.status, NEW.name, NEW.email, NEW.event_id) IS DISTINCT FROM
     (OLD.token, OLD.status, OLD.name, OLD.email, OLD.event_id) THEN
    NEW.roster_seq := nextval('roster_seq');
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END $$;
ALTER TABLE participants DROP COLUMN tags;
ALTER TABLE participants DROP COLUMN category;
