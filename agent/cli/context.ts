import { existsSync } from 'node:fs'
import path from 'node:path'
import type { Command } from 'commander'
import { errorMessage, GateError, isGateError } from '../../shared/errors.js'
import { configInUseFile } from '../config/in-use.js'
import { loadAgentConfig } from '../config/load.js'
import type { AgentConfig } from '../config/schema.js'
import { ControlClient, SOCKET_NAME } from '../control/client.js'
import { EXIT, exitCodeFor } from '../exit-codes.js'
import { type Db, isSqliteError, mapSqliteError, openDatabase } from '../store/db.js'
import { DB_NAME } from '../store/open-agent-db.js'
import { findDataDirs, noDataMessage } from './data-dirs.js'
import { safeJson, terminalSafe } from './safe-text.js'

/** Options every gatectl command takes. */
export interface GlobalOptions {
  dataDir?: string
  config?: string
  json?: boolean
}

/** What a command works with: the agent's configuration and where its files are. */
export class CliContext {
  constructor(
    readonly config: AgentConfig,
    readonly json: boolean,
  ) {}

  get dbPath(): string {
    return path.join(this.config.dataDir, DB_NAME)
  }

  get socketPath(): string {
    return path.join(this.config.dataDir, SOCKET_NAME)
  }

  /** The running daemon, or null when it is down (a socket this user may not use is E_FORBIDDEN, not "down"). */
  async daemon(): Promise<ControlClient | null> {
    try {
      return await ControlClient.connect(this.socketPath, 1000)
    } catch (err) {
      if (isGateError(err, 'E_CONTROL_UNAVAILABLE')) return null
      throw err
    }
  }

  /**
   * The database, read-only (safe while the daemon writes: WAL). No database here is E_DB_OPEN
   * naming the gate data directories that can be found, with the command to use one.
   */
  openReadOnly(): Db {
    if (!existsSync(this.dbPath))
      throw new GateError('E_DB_OPEN', noDataMessage(this.config.dataDir, findDataDirs()))
    return openDatabase(this.dbPath, { readonly: true })
  }

  /** The database, writable (created and migrated if needed); an existing file is checked first, and refused when damaged. */
  openWritable(): Db {
    return openDatabase(this.dbPath, { verify: true })
  }

  /** Print a result: JSON with --json, else the human rendering. */
  print(value: unknown, human: () => string): void {
    if (this.json) process.stdout.write(`${safeJson(value, 2)}\n`)
    else process.stdout.write(`${terminalSafe(human())}\n`)
  }
}

/**
 * The configuration gatectl works with: --config or GATE_CONFIG when given; otherwise the one the
 * gate of this data directory (--data-dir, GATE_DATA_DIR, or the default) was started with, which
 * its agent keeps there (agent/config/in-use.ts); otherwise the defaults.
 */
export function loadCliConfig(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const overrides: Record<string, unknown> = {}
  if (opts.dataDir) overrides['dataDir'] = opts.dataDir
  let file = opts.config ?? env['GATE_CONFIG']
  if (file === undefined) {
    const dataDir = opts.dataDir ?? env['GATE_DATA_DIR'] ?? loadAgentConfig({ env: {} }).dataDir
    file = configInUseFile(dataDir)
    // the file names the directory as the agent resolved it; the one asked for is where it is now
    overrides['dataDir'] = dataDir
  }
  return loadAgentConfig({ file, env, overrides })
}

/** Build the context from the global options (config file, env, --data-dir), validated once. */
export function contextFrom(cmd: Command): CliContext {
  const opts = cmd.optsWithGlobals<GlobalOptions>()
  return new CliContext(loadCliConfig(opts), opts.json === true)
}

/**
 * Run a command body and turn its outcome into an exit code: a number it returns, or the code of the
 * GateError it throws (printed as one clear line, or as JSON with --json).
 */
export function action<A extends unknown[]>(
  fn: (ctx: CliContext, ...args: A) => Promise<number | undefined>,
) {
  return async (...args: unknown[]): Promise<void> => {
    const cmd = args[args.length - 1] as Command
    const json = cmd.optsWithGlobals<GlobalOptions>().json === true
    let ctx: CliContext | null = null
    try {
      ctx = contextFrom(cmd)
      process.exitCode = (await fn(ctx, ...(args.slice(0, -1) as A))) ?? EXIT.ok
    } catch (thrown) {
      // SQLite's own errors (a damaged page met while reading) become the database's clear errors
      const err = ctx && isSqliteError(thrown) ? mapSqliteError(thrown, ctx.dbPath) : thrown
      const code = err instanceof GateError ? err.code : 'E_INTERNAL'
      if (json) process.stdout.write(`${safeJson({ error: { code, message: errorMessage(err) } })}\n`)
      else console.error(`gatectl: ${terminalSafe(errorMessage(err))}`)
      process.exitCode = exitCodeFor(code)
    }
  }
}

/** Longest duration a timer can wait, s (setTimeout takes at most 2^31 - 1 ms). */
export const MAX_DURATION_S = 2_147_483

/**
 * A positive number from a command-line option (undefined when not given); `integer` for counts.
 * E_INPUT naming the option when it is not one, or above `max`.
 */
export function positiveOption(
  name: string,
  text: string | undefined,
  opts: { max?: number; integer?: boolean } = {},
): number | undefined {
  if (text === undefined) return undefined
  const value = Number(text)
  const max = opts.max ?? Number.MAX_SAFE_INTEGER
  if (!Number.isFinite(value) || value <= 0 || value > max || (opts.integer && !Number.isInteger(value)))
    throw new GateError(
      'E_INPUT',
      `${name} must be a positive ${opts.integer ? 'integer' : 'number'}${opts.max ? ` up to ${opts.max}` : ''}, got "${text}"`,
    )
  return value
}
