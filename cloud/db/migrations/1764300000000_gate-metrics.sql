-- Up Migration

-- The fleet's metrics history (gates/<id>/metrics as received), range-partitioned on the gate's
-- time like the check-ins; the partition manager creates days ahead and drops them after
-- FLEET_HISTORY_RETENTION_DAYS. A default partition: nothing is refused for lack of a partition.
CREATE TABLE gate_metrics (
  gate_id      text NOT NULL,
  ts           timestamptz NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  session      integer NOT NULL,
  seq          bigint NOT NULL,
  metrics      jsonb NOT NULL
) PARTITION BY RANGE (ts);
CREATE TABLE gate_metrics_default PARTITION OF gate_metrics DEFAULT;
CREATE INDEX gate_metrics_gate_ts ON gate_metrics (gate_id, ts DESC);

-- Down Migration
DROP TABLE gate_metrics;
