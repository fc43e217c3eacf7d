import { type Logger, pino } from 'pino'
import type { CloudConfig } from './config.js'

/** Settings that hold secrets (or URLs that may hold passwords): never logged. */
const SECRETS = [
  'req.headers.authorization',
  'opsToken',
  'databaseUrl',
  'readReplicaUrls',
  'redisUrl',
  'fleet.commandSecret',
  'commandSecret',
  'alerts.mqttPassword',
  'mqttPassword',
  'alerts.webhookUrl',
  'webhookUrl',
]

/** The service's log: JSON lines on stdout at LOG_LEVEL, secrets redacted. */
export function serviceLogger(config: CloudConfig): Logger {
  return pino({ name: 'gate-cloud', level: config.logLevel, redact: SECRETS })
}
