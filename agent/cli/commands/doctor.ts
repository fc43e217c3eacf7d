import { accessSync, constants, existsSync } from 'node:fs'
import type { Command } from 'commander'
import { errorMessage } from '../../../shared/errors.js'
import type { AgentStatus } from '../../../shared/status.js'
import { configInUseFile } from '../../config/in-use.js'
import { loadAgentConfig } from '../../config/load.js'
import { type CheckResult, checkScheduling, runSystemChecks } from '../../doctor/system-checks.js'
import { EXIT } from '../../exit-codes.js'
import { openDatabase, quickCheck } from '../../store/db.js'
import { type CliContext, CliContext as Ctx, type GlobalOptions, loadCliConfig } from '../context.js'
import { safeJson, terminalSafe } from '../safe-text.js'

const MARK = { pass: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const

/** Checks of the agent's own files: config, data directory, database. */
export function agentChecks(ctx: CliContext): CheckResult[] {
  const out: CheckResult[] = []
  const dir = ctx.config.dataDir
  if (!existsSync(dir)) {
    out.push({
      name: 'data directory',
      status: 'warn',
      detail: `${dir} does not exist yet`,
      fix: 'it is created when the agent first starts',
    })
    return out
  }
  try {
    accessSync(dir, constants.W_OK)
    out.push({ name: 'data directory', status: 'pass', detail: `${dir} is writable` })
  } catch {
    out.push({
      name: 'data directory',
      status: 'fail',
      detail: `${dir} is not writable by this user`,
      fix: `chown the directory to the agent's user (deploy/ uses "gate")`,
    })
  }
  if (!existsSync(ctx.dbPath)) {
    out.push({
      name: 'database',
      status: 'warn',
      detail: 'no database yet',
      fix: 'it is created when the agent first starts',
    })
    return out
  }
  try {
    const db = openDatabase(ctx.dbPath, { readonly: true })
    try {
      const problems = quickCheck(db)
      out.push(
        problems.length === 1 && problems[0] === 'ok'
          ? { name: 'database integrity', status: 'pass', detail: 'quick_check ok' }
          : {
              name: 'database integrity',
              status: 'fail',
              detail: problems.slice(0, 5).join('; '),
              // not `.recover`: Debian 12's sqlite3 (3.40.1) fails on it with "SQL logic error"
              fix: 'stop the agent, move agent.db and its -wal and -shm files aside together, start it afresh; `sqlite3 damaged/agent.db .dump` keeps every readable row',
            },
      )
    } finally {
      db.close()
    }
  } catch (err) {
    out.push({
      name: 'database integrity',
      status: 'fail',
      detail: errorMessage(err),
      fix: 'see the message; the file was not modified',
    })
  }
  return out
}

/** Which configuration the checks are of, in the words of loadCliConfig. */
function describeConfigSource(opts: GlobalOptions): string {
  const given = opts.config ?? process.env['GATE_CONFIG']
  if (given !== undefined) return `from ${given}`
  const inUse = configInUseFile(
    opts.dataDir ?? process.env['GATE_DATA_DIR'] ?? loadAgentConfig({ env: {} }).dataDir,
  )
  return inUse
    ? `as the gate runs it, from ${inUse}`
    : 'defaults: the gate never ran with this data directory'
}

async function doctor(cmd: Command): Promise<number> {
  const opts = cmd.optsWithGlobals<GlobalOptions>()
  const results: CheckResult[] = []
  let ctx: CliContext | null = null
  try {
    ctx = new Ctx(loadCliConfig(opts), opts.json === true)
    results.push({
      name: 'configuration',
      status: 'pass',
      detail: `valid (gate ${ctx.config.gateId}, source ${ctx.config.source.kind}; ${describeConfigSource(opts)})`,
    })
  } catch (err) {
    results.push({
      name: 'configuration',
      status: 'fail',
      detail: errorMessage(err),
      fix: 'correct the listed settings (config file, GATE_* variables)',
    })
  }
  if (ctx) {
    results.push(...agentChecks(ctx))
    let daemon: Awaited<ReturnType<CliContext['daemon']>> = null
    try {
      daemon = await ctx.daemon()
      results.push(
        daemon
          ? { name: 'agent daemon', status: 'pass', detail: 'running (control socket answers)' }
          : {
              name: 'agent daemon',
              status: 'warn',
              detail: 'not running',
              fix: 'sudo systemctl start gate-agent; journalctl -u gate-agent for why it stopped',
            },
      )
    } catch (err) {
      // E_FORBIDDEN: whether it runs is unknown to this user, and the message says what to do
      results.push({ name: 'agent daemon', status: 'fail', detail: errorMessage(err) })
    }
    if (daemon) {
      try {
        const status = (await daemon.request('status')) as AgentStatus
        results.push(checkScheduling(status.scheduling))
      } catch (err) {
        results.push({
          name: 'event-loop scheduling',
          status: 'warn',
          detail: `no status from the daemon: ${errorMessage(err)}`,
        })
      } finally {
        daemon.close()
      }
    }
  }
  const nobleInUse = ctx === null || ctx.config.source.kind === 'noble'
  const system = await runSystemChecks({ dataDir: ctx?.config.dataDir ?? process.cwd() })
  results.push(
    ...system.map((result) =>
      nobleInUse || result.status !== 'fail'
        ? result
        : {
            ...result,
            status: 'warn' as const,
            detail: `${result.detail} (not needed: source is ${ctx?.config.source.kind})`,
          },
    ),
  )
  const failed = results.filter((r) => r.status === 'fail').length
  if (opts.json) {
    process.stdout.write(`${safeJson({ ok: failed === 0, checks: results }, 2)}\n`)
  } else {
    for (const result of results) {
      process.stdout.write(terminalSafe(`[${MARK[result.status]}] ${result.name}: ${result.detail}\n`))
      if (result.fix && result.status !== 'pass')
        process.stdout.write(terminalSafe(`       fix: ${result.fix}\n`))
    }
    process.stdout.write(failed === 0 ? 'all checks passed\n' : `${failed} check(s) failed\n`)
  }
  return failed === 0 ? EXIT.ok : EXIT.failure
}

/** Add `gatectl doctor` to the program. */
export function register(program: Command): void {
  program
    .command('doctor')
    .description(
      'check adapter, permissions, disk, database, clock and config; each failure says how to fix it (exit 1 if any fails)',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      process.exitCode = await doctor(cmd)
    })
}
