-- Up Migration

-- Personal data kept no longer than it is needed. An event may say how many days after its last
-- check-in its participants' names and e-mails are erased (the counts, the check-ins and the
-- pseudonymous participant ids stay: the figures of a past event remain); one participant can be
-- erased on request at any time. erased_at says when, so that the erasure is shown for what it is.
ALTER TABLE events ADD COLUMN retention_days integer CHECK (retention_days BETWEEN 1 AND 3650);
ALTER TABLE participants ADD COLUMN erased_at timestamptz;

-- Down Migration
ALTER TABLE participants DROP COLUMN erased_at;
ALTER TABLE events DROP COLUMN retention_days;
