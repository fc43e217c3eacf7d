-- Up Migration

-- A badge's token is unique among the active participants of one event, no longer across every
-- event: events that reuse badges (next year's edition, two shows with one badge vendor's ranges)
-- each hold their own. The token leads the key, so that looking a token up still uses this index.
DROP INDEX participants_active_token;
CREATE UNIQUE INDEX participants_active_token ON participants (token, coalesce(event_id, ''))
  WHERE status = 'active';

-- Down Migration
-- (fails while two events' active participants share a token: revoke one of them first)
DROP INDEX participants_active_token;
CREATE UNIQUE INDEX participants_active_token ON participants (token) WHERE status = 'active';
