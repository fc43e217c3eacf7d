import { build, prettyFactory } from 'pino-pretty'

/** How pino-pretty shows a line: the time of day, the level, the message, then the other fields. */
const PRETTY = { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } as const

/**
 * How the demo shows its children's output lines: with the program's name in front and, on a
 * terminal, each pino JSON line made readable (time, level, message, fields); otherwise (a file, a
 * pipe, a test reading it) exactly as it came, JSON for the machines that read it.
 */
export function lineShower(terminal: boolean): (name: string, line: string) => string {
  if (!terminal) return (name, line) => `[${name}] ${line}\n`
  const pretty = prettyFactory({ ...PRETTY, colorize: true })
  return (name, line) => {
    if (!line.startsWith('{')) return `[${name}] ${line}\n`
    const shown = pretty(line)
    return `[${name}] ${shown.endsWith('\n') ? shown : `${shown}\n`}`
  }
}

/** The demo's own log destination: readable on a terminal, JSON lines otherwise. */
export function demoLogStream(terminal: boolean): NodeJS.WritableStream | undefined {
  return terminal ? build({ ...PRETTY, colorize: true, sync: true }) : undefined
}
