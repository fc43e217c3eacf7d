import type pg from 'pg'
import type { Logger } from 'pino'
import type { CloudConfig } from '../config.js'
import type { PartitionInterval } from './intervals.js'
import { maintainPartitions, type PartitionPolicy } from './manager.js'

/** The check-ins: PARTITION_INTERVAL, PARTITION_PREMAKE ahead, PARTITION_RETENTION_DAYS kept. */
function checkinsPolicy(c: CloudConfig): PartitionPolicy {
  return {
    interval: c.partitions.interval as PartitionInterval,
    premake: c.partitions.premake,
    retentionDays: c.partitions.retentionDays,
    dropDetached: c.partitions.dropDetached,
  }
}

/** The fleet's metrics history: one partition a day, kept FLEET_HISTORY_RETENTION_DAYS. */
function metricsPolicy(c: CloudConfig): PartitionPolicy {
  return {
    table: 'gate_metrics',
    interval: 'day',
    premake: 2,
    retentionDays: c.fleet.historyRetentionDays,
    dropDetached: true,
  }
}

/** Maintain every partitioned table: the check-ins and the fleet's metrics history. */
export async function maintainAllPartitions(client: pg.ClientBase, c: CloudConfig, log?: Logger) {
  const now = new Date()
  return {
    attendance_records: await maintainPartitions(client, checkinsPolicy(c), now, log),
    gate_metrics: await maintainPartitions(client, metricsPolicy(c), now, log),
  }
}
