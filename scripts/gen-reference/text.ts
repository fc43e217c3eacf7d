/** The reference's wording: sentences wrapped at WIDTH, numbers, durations and sizes, types and defaults. */
import type { Node } from './schema.js'

const WIDTH = 100

const SAFE = Number.MAX_SAFE_INTEGER
const num = (n: number): string =>
  Number.isInteger(n) && Math.abs(n) >= 1_000 ? n.toLocaleString('en-US') : String(n)

/** A sentence: first letter up, a full stop at the end. */
export function sentence(text: string): string {
  const t = text.trim()
  // a first word in lower case only (not iBeacon, gate-cloud or `code`)
  const up = /^[a-z]+(?![A-Za-z0-9'-])/.test(t) ? t.charAt(0).toUpperCase() + t.slice(1) : t
  return /[.!?]$/.test(up) ? up : `${up}.`
}

/** `text` wrapped at WIDTH columns after `first`, each further line starting with `indent`. */
export function wrap(text: string, indent = '', first = ''): string {
  const lines: string[] = []
  let line = first
  let empty = true
  for (const w of text.split(/\s+/).filter(Boolean)) {
    if (empty) line += w
    else if (line.length + 1 + w.length > WIDTH) {
      lines.push(line)
      line = `${indent}${w}`
    } else line += ` ${w}`
    empty = false
  }
  lines.push(line)
  return lines.join('\n')
}

function plural(n: number, unit: string): string {
  return `${num(n)} ${unit}`
}

/** A duration or a size in words, for defaults given in ms, s or bytes. */
function human(key: string, v: number): string | null {
  if (v === 0) return null
  if (/Ms$/.test(key) && v >= 1_000) return duration(v / 1_000)
  if (/S$/.test(key) && v >= 60) return duration(v)
  if (/Bytes$/.test(key) && v >= 1_024) {
    if (v % (1024 * 1024) === 0) return `${num(v / (1024 * 1024))} MiB`
    if (v % 1024 === 0) return `${num(v / 1024)} KiB`
  }
  return null
}

function duration(s: number): string {
  if (s % 86_400 === 0) return plural(s / 86_400, s === 86_400 ? 'day' : 'days')
  if (s % 3_600 === 0) return `${num(s / 3_600)} h`
  if (s % 60 === 0) return `${num(s / 60)} min`
  return `${num(s)} s`
}

function valueText(v: unknown): string {
  if (typeof v === 'number') return `\`${v}\``
  return `\`${JSON.stringify(v)}\``
}

/** A setting's default, in words: `default <value>` (and its duration or size), or that it has none. */
export function defaultText(key: string, n: Node): string {
  if (!('default' in n)) return 'no default'
  const v = n.default
  if (v === null) return 'default none'
  const h = typeof v === 'number' ? human(key, v) : null
  return `default ${valueText(v)}${h ? ` (${h})` : ''}`
}

function range(n: Node): string | null {
  const lo = n.exclusiveMinimum !== undefined ? `above ${num(n.exclusiveMinimum)}` : null
  const min = n.minimum !== undefined && n.minimum > -SAFE ? n.minimum : undefined
  const max = n.maximum !== undefined && n.maximum < SAFE ? n.maximum : undefined
  if (lo) return max !== undefined ? `${lo}, at most ${num(max)}` : lo
  if (min !== undefined && max !== undefined) return `${num(min)} to ${num(max)}`
  if (min !== undefined) return `at least ${num(min)}`
  if (max !== undefined) return `at most ${num(max)}`
  return null
}

/** A setting's type in words: its values, range or length, and whether it may be none. */
export function typeText(n: Node): string {
  const nullable = n.anyOf?.some((x) => x.type === 'null') ?? false
  const node = n.anyOf?.find((x) => x.type !== 'null') ?? n
  let t: string
  if (node.enum) t = `one of ${node.enum.map((e) => `\`${String(e)}\``).join(', ')}`
  else if (node.type === 'integer' || node.type === 'number') {
    const r = range(node)
    t = `${node.type === 'integer' ? 'integer' : 'number'}${r ? `, ${r}` : ''}`
  } else if (node.type === 'string') {
    if (node.format === 'uri') t = 'URL'
    else if (node.minLength !== undefined && node.minLength > 1)
      t = `string of at least ${node.minLength} characters`
    else if (node.maxLength !== undefined) t = `string of at most ${node.maxLength} characters`
    else t = 'string'
  } else if (node.type === 'boolean') t = '`true` or `false`'
  else if (node.type === 'array') t = `list of ${node.items?.type ?? 'value'}s`
  else if (node.type === 'object') t = `object {${Object.keys(node.properties ?? {}).join(', ')}}`
  else t = 'value'
  return nullable ? `${t}, or none` : t
}
