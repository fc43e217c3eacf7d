-- Up Migration

-- A gate's session is at least its wall clock in seconds (agent/report/mqtt-reporter.ts): every
-- gate passes 2^31 - 1 on 2038-01-19, and one message with a larger session made the whole batch
-- fail ("integer out of range"), which was kept and retried at the head of the queue: the history
-- of every gate stopped. bigint, like seq. Altering the type rewrites gate_metrics and its
-- partitions under an exclusive lock: on a large history it takes a while, during which the cloud
-- keeps the metrics in memory (bounded, see HistoryQueue) and writes them afterwards.
ALTER TABLE gate_metrics ALTER COLUMN session TYPE bigint;

-- Down Migration
-- (a session beyond 2^31 - 1 does not fit an integer again: such rows must be deleted first)
ALTER TABLE gate_metrics ALTER COLUMN session TYPE integer;
