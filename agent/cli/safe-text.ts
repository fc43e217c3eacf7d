// What gatectl prints comes partly from others: participant ids and names from a roster file or the
// cloud, error texts from the cloud, file names. A control character in them reaches the terminal
// as a command (ESC ] 0 ; ... BEL retitles the window, ESC [ 2 J clears the screen, and C1's CSI
// 0x9b is ESC [ on some terminals). Every one of them is shown as a visible escape instead: once
// the ESC is escaped, the rest of its sequence is plain text.

/** C0 controls, DEL and C1 controls. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this escapes
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g
/** The same, but for the line break (a rendering's own lines). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this escapes
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g
/** What JSON.stringify leaves raw: DEL and C1 (it escapes C0 itself). */
const RAW_IN_JSON = /[\u007f-\u009f]/g

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

function visible(char: string): string {
  return NAMED[char] ?? `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`
}

/** One value from the roster, the database or the cloud, safe to print: every control character escaped, line breaks too. */
export function printable(text: string | null | undefined): string {
  return text == null ? '' : text.replace(CONTROL, visible)
}

/** A rendering for the terminal: every control character escaped except its own line breaks. */
export function terminalSafe(text: string): string {
  return text.replace(CONTROL_BUT_NEWLINE, visible)
}

/**
 * JSON for stdout. JSON.stringify escapes C0 characters but leaves DEL and C1 raw; they are written
 * as \u escapes too (they occur only inside strings, so the JSON value is the same).
 */
export function safeJson(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(
    RAW_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}
