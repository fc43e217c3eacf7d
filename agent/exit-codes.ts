import type { ErrorCode } from '../shared/errors.js'

/** Exit codes of gate-agent and gatectl, stable for scripts and systemd (docs/reference/exit-codes.md). */
export const EXIT = {
  ok: 0,
  /** a runtime failure, or a doctor check failed, or a check-in list/lookup found a problem */
  failure: 1,
  /** bad command line or configuration */
  usage: 2,
  /** the BLE adapter is missing, not permitted or unsupported */
  adapter: 3,
  /** the database is corrupted, foreign, too new or cannot be opened */
  database: 4,
  /** the daemon is not running (for commands that need it) or another one already is */
  daemon: 5,
  /** the thing asked for does not exist (unknown token) */
  notFound: 6,
} as const

/** The exit code for an error code. */
export function exitCodeFor(code: ErrorCode | string | undefined): number {
  switch (code) {
    case 'E_CONFIG_INVALID':
    case 'E_INPUT':
    case 'E_ROSTER_FILE':
    case 'E_REPLAY_FILE':
      return EXIT.usage
    case 'E_BLE_ADAPTER_UNAVAILABLE':
    case 'E_BLE_PERMISSION':
    case 'E_BLE_UNSUPPORTED':
      return EXIT.adapter
    case 'E_DB_CORRUPT':
    case 'E_DB_FOREIGN':
    case 'E_DB_TOO_NEW':
    case 'E_DB_OPEN':
    case 'E_DB_WRITE':
      return EXIT.database
    case 'E_DAEMON_RUNNING':
    case 'E_CONTROL_UNAVAILABLE':
      return EXIT.daemon
    case 'E_NOT_FOUND':
      return EXIT.notFound
    default:
      return EXIT.failure
  }
}
