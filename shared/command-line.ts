import { Command } from 'commander'
import { productVersion } from './version.js'

/** A usage error of the command line exits 2, as bad input does. */
const USAGE_EXIT = 2

/**
 * A program's command line: its name, what it does and the product's version, the usage shown
 * after a usage error, which exits 2 (help and version exit 0).
 */
export function newProgram(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .version(productVersion())
    .showHelpAfterError()
    .exitOverride((err) => {
      process.exit(err.exitCode === 0 ? 0 : USAGE_EXIT)
    })
}
