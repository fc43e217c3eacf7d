-- Up Migration

-- Every alert firing, resolution and recovery action, by node (ops history, and the restart guard:
-- a node never restarts itself twice within RESTART_MIN_INTERVAL_MS).
CREATE TABLE alert_events (
  id            bigserial PRIMARY KEY,
  node          text NOT NULL,
  rule          text NOT NULL,
  severity      text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  state         text NOT NULL CHECK (state IN ('firing', 'resolved')),
  metric        text NOT NULL,
  value         double precision NOT NULL,
  threshold     double precision NOT NULL,
  action        text,
  action_result text,
  at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_events_at ON alert_events (at DESC);
CREATE INDEX alert_events_node_action ON alert_events (node, action, at DESC) WHERE action IS NOT NULL;

-- Down Migration
DROP TABLE alert_events;
