import type pg from 'pg'
import type { Logger } from 'pino'
import type { PartitionInterval } from './intervals.js'
import { maintainPartitions, type PartitionPolicy } from './manager.js'

/** The settings partition maintenance reads (a CloudConfig has them). */
export interface PartitionSettings {
  /** the check-ins: PARTITION_INTERVAL (validated), PARTITION_PREMAKE, _RETENTION_DAYS, _DROP_DETACHED */
  partitions: { interval: string; premake: number; retentionDays: number | null; dropDetached: boolean }
  /** the fleet's metrics history: FLEET_HISTORY_RETENTION_DAYS */
  fleet: { historyRetentionDays: number }
}

/** The check-ins: PARTITION_INTERVAL, PARTITION_PREMAKE ahead, PARTITION_RETENTION_DAYS kept. */
function checkinsPolicy(c: PartitionSettings): PartitionPolicy {
  return {
    interval: c.partitions.interval as PartitionInterval,
    premake: c.partitions.premake,
    retentionDays: c.partitions.retentionDays,
    dropDetached: c.partitions.dropDetached,
  }
}

/** The fleet's metrics history: one partition a day, kept FLEET_HISTORY_RETENTION_DAYS. */
function metricsPolicy(c: PartitionSettings): PartitionPolicy {
  return {
    table: 'gate_metrics',
    interval: 'day',
    premake: 2,
    retentionDays: c.fleet.historyRetentionDays,
    dropDetached: true,
  }
}

/** Maintain every partitioned table: the check-ins and the fleet's metrics history. */
export async function maintainAllPartitions(client: pg.ClientBase, c: PartitionSettings, log?: Logger) {
  const now = new Date()
  return {
    attendance_records: await maintainPartitions(client, checkinsPolicy(c), now, log),
    gate_metrics: await maintainPartitions(client, metricsPolicy(c), now, log),
  }
}
