import { type Logger, pino } from 'pino'

/** Paths redacted from every log line: secrets never reach logs. */
export const REDACT_PATHS = [
  'gateKey',
  '*.gateKey',
  'cloud.gateKey',
  'config.cloud.gateKey',
  'headers.authorization',
  '*.headers.authorization',
  'authorization',
  'password',
  '*.password',
  'commandSecret',
  '*.commandSecret',
  'config.mqtt.password',
  'config.mqtt.commandSecret',
]

/** The agent's root logger: JSON lines on stdout (journald keeps them), secrets redacted. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      name: 'gate-agent',
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  )
}

export type { Logger }
