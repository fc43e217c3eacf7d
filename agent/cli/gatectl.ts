import { Command } from 'commander'
import { productVersion } from '../../shared/version.js'
import { register as byHand } from './commands/by-hand.js'
import { register as capture } from './commands/capture.js'
import { register as checkins } from './commands/checkins.js'
import { register as decode } from './commands/decode.js'
import { register as doctor } from './commands/doctor.js'
import { register as roster } from './commands/roster.js'
import { register as status } from './commands/status.js'
import { register as sync } from './commands/sync.js'
import { register as tail } from './commands/tail.js'

/** The field technician's CLI. Every command takes --data-dir (or the agent's config) and --json. */
export function buildGatectl(): Command {
  const program = new Command('gatectl')
    .description("field technician's CLI for a BLE gate agent")
    .version(productVersion())
    .option('-d, --data-dir <dir>', "the agent's data directory (also GATE_DATA_DIR)")
    .option('-c, --config <file>', "the agent's JSON config file (also GATE_CONFIG)")
    .option('--json', 'machine-readable output')
    .showHelpAfterError()
    .exitOverride((err) => {
      // commander's own usage errors (unknown command, missing argument) exit 2, help/version exit 0
      process.exit(err.exitCode === 0 ? 0 : 2)
    })
  for (const register of [status, tail, checkins, byHand, roster, sync, decode, capture, doctor])
    register(program)
  return program
}

/**
 * A reader that stops reading (`gatectl doctor | head`) closes the pipe: the rest of the output is
 * dropped and the command ends with its own exit code, as Unix tools do, instead of a stack trace.
 */
function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
    stream.write = (() => true) as typeof stream.write
  })
}

quietOnClosedPipe(process.stdout)
await buildGatectl().parseAsync(process.argv)
