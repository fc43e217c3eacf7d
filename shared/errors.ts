/** Error codes shared by every program. A code is stable: scripts and tests match on it. */
export type ErrorCode =
  | 'E_CONFIG_INVALID'
  | 'E_BLE_ADAPTER_UNAVAILABLE'
  | 'E_BLE_PERMISSION'
  | 'E_BLE_UNSUPPORTED'
  | 'E_REPLAY_FILE'
  | 'E_DB_CORRUPT'
  | 'E_DB_FOREIGN'
  | 'E_DB_TOO_NEW'
  | 'E_DB_OPEN'
  | 'E_DB_WRITE'
  | 'E_ROSTER_FILE'
  | 'E_CONTROL_PROTOCOL'
  | 'E_CONTROL_UNAVAILABLE'
  | 'E_DAEMON_RUNNING'
  | 'E_INPUT'
  | 'E_NOT_FOUND'
  | 'E_CONFLICT'
  | 'E_TIMEOUT'
  | 'E_INTERNAL'
  | 'E_AUTH'
  | 'E_FORBIDDEN'
  | 'E_DB_UNAVAILABLE'
  | 'E_RATE_LIMITED'

/** An error with a stable code, a cause and context, as a value rather than a bare string. */
export class GateError extends Error {
  readonly code: ErrorCode
  readonly context: Record<string, unknown>

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; context?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'GateError'
    this.code = code
    this.context = options.context ?? {}
  }
}

/** True when `err` is a GateError with the given code (or any GateError when no code is given). */
export function isGateError(err: unknown, code?: ErrorCode): err is GateError {
  return err instanceof GateError && (code === undefined || err.code === code)
}

/** The message of any thrown value, for logs and CLI output. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
