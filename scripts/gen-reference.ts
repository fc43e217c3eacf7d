/**
 * npm run docs:reference [-- --check]
 *
 * Writes docs/reference/agent-config.md and docs/reference/cloud-config.md from the code: the
 * agent's zod schema (agent/config/schema.ts) with the environment variables of
 * agent/config/load.ts, and gate-cloud's schema and environment table (cloud/config.ts). Each
 * setting's text is its `.describe()`. With --check nothing is written: the exit code says whether
 * the committed pages are up to date (test/docs-reference.test.ts does the same in `npm test`).
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { z } from 'zod'
import { ENV_MAP } from '../agent/config/load.js'
import { agentConfigSchema } from '../agent/config/schema.js'
import { CLOUD_ENV, cloudConfigSchema } from '../cloud/config.js'
import type { EnvType, EnvVar } from '../shared/env-config.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const WIDTH = 100

/** A JSON Schema node as z.toJSONSchema makes it (the input side: defaults as written). */
interface Node {
  type?: string
  description?: string
  default?: unknown
  enum?: unknown[]
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  minLength?: number
  maxLength?: number
  minItems?: number
  format?: string
  items?: Node
  anyOf?: Node[]
  properties?: Record<string, Node>
  required?: string[]
}

/** A setting, a leaf of the schema. */
interface Leaf {
  path: string[]
  node: Node
}

/** A section: an object of the schema, with its settings and its subsections. */
interface Section {
  path: string[]
  node: Node
  leaves: Leaf[]
  sections: Section[]
}

const jsonSchema = (schema: z.ZodType): Node =>
  z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Node

/** An object whose keys are all required (no defaults of their own) is one setting, not a section. */
const isSection = (n: Node): boolean =>
  n.properties !== undefined && (n.required?.length ?? 0) < Object.keys(n.properties).length

function walk(node: Node, at: string[]): Section {
  const section: Section = { path: at, node, leaves: [], sections: [] }
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    if (isSection(child)) section.sections.push(walk(child, [...at, key]))
    else section.leaves.push({ path: [...at, key], node: child })
  }
  return section
}

function leavesOf(s: Section): Leaf[] {
  return [...s.leaves, ...s.sections.flatMap(leavesOf)]
}

// ---------------------------------------------------------------------------------------------
// text

const SAFE = Number.MAX_SAFE_INTEGER
const num = (n: number): string =>
  Number.isInteger(n) && Math.abs(n) >= 1_000 ? n.toLocaleString('en-US') : String(n)

/** A sentence: first letter up, a full stop at the end. */
function sentence(text: string): string {
  const t = text.trim()
  // a first word in lower case only (not iBeacon, gate-cloud or `code`)
  const up = /^[a-z]+(?![A-Za-z0-9'-])/.test(t) ? t.charAt(0).toUpperCase() + t.slice(1) : t
  return /[.!?]$/.test(up) ? up : `${up}.`
}

/** `text` wrapped at WIDTH columns after `first`, each further line starting with `indent`. */
function wrap(text: string, indent = '', first = ''): string {
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

function defaultText(key: string, n: Node): string {
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

function typeText(n: Node): string {
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

// ---------------------------------------------------------------------------------------------
// environment variables read outside the config tables (each must be listed: see undocumentedEnv)

/** Environment variables the agent reads besides ENV_MAP. */
const AGENT_EXTRA_ENV: Record<string, string> = {
  GATE_CONFIG: 'the JSON config file, when `--config` is not given',
  NOTIFY_SOCKET: 'set by systemd (`Type=notify`): where the agent says READY, WATCHDOG and STOPPING',
  WATCHDOG_USEC: 'set by systemd (`WatchdogSec`): the agent pings at half of it',
}

/** Environment variables gate-cloud and the demo (`npm start`) read besides CLOUD_ENV. */
const CLOUD_EXTRA_ENV: Record<string, string> = {
  ROUTER_BACKENDS: '`gate-cloud router`: the comma-separated node URLs, when `--backends` is not given',
  ROUTER_HOST: '`gate-cloud router`: the listen address, when `--host` is not given (default `127.0.0.1`)',
  ROUTER_PORT: '`gate-cloud router`: the listen port, when `--port` is not given (default `8000`)',
  MQTT_PORT:
    '`npm start` (gate-demo): the embedded MQTT broker port (default `1883`; a free port when it is taken); unused with `MQTT_URL`',
  KUBERNETES_SERVICE_HOST:
    'set by Kubernetes in a pod: the API server the autoscaler scales `AUTOSCALE_K8S_DEPLOYMENT` through',
  KUBERNETES_SERVICE_PORT: 'set by Kubernetes in a pod, with `KUBERNETES_SERVICE_HOST`',
}

function sourceFiles(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name)
    if (e.isDirectory()) out.push(...sourceFiles(rel))
    else if (e.name.endsWith('.ts')) out.push(rel)
  }
  return out
}

/** Variables the sources under `dirs` read (not assign) that neither table nor extras list. */
export function undocumentedEnv(dirs: string[], known: Iterable<string>): string[] {
  const listed = new Set(known)
  const found = new Set<string>()
  const read = /\benv(?:\[['"]([A-Z][A-Z0-9_]*)['"]\]|\.([A-Z][A-Z0-9_]*))(?!\s*=[^=])/g
  for (const file of dirs.flatMap(sourceFiles)) {
    for (const m of readFileSync(path.join(ROOT, file), 'utf8').matchAll(read)) {
      const name = m[1] ?? m[2]
      if (name && !listed.has(name)) found.add(`${name} (${file})`)
    }
  }
  return [...found].sort()
}

// ---------------------------------------------------------------------------------------------
// the agent

function agentLeaf(l: Leaf, envByPath: Map<string, string>): string {
  const key = l.path[l.path.length - 1] ?? ''
  const env = envByPath.get(l.path.join('.'))
  const facts = [typeText(l.node), defaultText(key, l.node), ...(env ? [`env \`${env}\``] : [])]
  const head = wrap(`${facts.join('; ')}.`, '  ', `- \`${l.path.join('.')}\`: `)
  const text = l.node.description ? `\n${wrap(sentence(l.node.description), '  ', '  ')}` : ''
  return `${head}${text}`
}

function agentSection(s: Section, envByPath: Map<string, string>, depth: number): string[] {
  const out: string[] = []
  const name = s.path.join('.')
  if (s.leaves.length > 0) {
    out.push(`${'#'.repeat(depth)} ${name ? `\`${name}\`` : 'Top level'}`, '')
    if (s.node.description) out.push(wrap(sentence(s.node.description)), '')
    for (const l of s.leaves) out.push(agentLeaf(l, envByPath))
    out.push('')
  } else if (name) {
    out.push(`${'#'.repeat(depth)} \`${name}\``, '')
    if (s.node.description) out.push(wrap(sentence(s.node.description)), '')
  }
  const next = name ? Math.min(depth + 1, 4) : depth
  for (const sub of s.sections) out.push(...agentSection(sub, envByPath, next))
  return out
}

/** docs/reference/agent-config.md */
export function renderAgentConfig(): string {
  const root = walk(jsonSchema(agentConfigSchema), [])
  const envByPath = new Map(ENV_MAP.map((e) => [e.path.join('.'), e.env]))
  const paths = new Set(leavesOf(root).map((l) => l.path.join('.')))
  for (const e of ENV_MAP)
    if (!paths.has(e.path.join('.'))) throw new Error(`${e.env} sets ${e.path.join('.')}, not a setting`)
  const lines = [
    '# Agent configuration',
    '',
    '<!-- Generated by scripts/gen-reference.ts from agent/config/schema.ts and agent/config/load.ts.',
    '     Do not edit: change the .describe() texts in the schema and run `npm run docs:reference`. -->',
    '',
    wrap(
      '`gate-agent run` and `gatectl` read one configuration, lowest precedence first: built-in defaults, ' +
        'a JSON file (`--config FILE`, or `GATE_CONFIG`), environment variables, then the command-line ' +
        'flags of `gate-agent run`. It is validated once at start, every problem is reported at once and ' +
        'the program exits 2; unknown keys are refused. A complete file for a gate is ' +
        '[`deploy/pi/agent.json`](../../deploy/pi/agent.json).',
    ),
    '',
    '```',
    'gate-agent: invalid configuration:',
    "  - gateId (GATE_ID): letters, digits, '-' and '_' only, at most 64",
    '  - source.kind (GATE_SOURCE): Invalid option: expected one of "noble"|"sim"|"replay"',
    '  - proximity.enterDbm (GATE_RSSI_THRESHOLD): Too big: expected number to be <=0',
    '```',
    '',
    '## Environment variables',
    '',
    '| variable | setting |',
    '| --- | --- |',
    ...ENV_MAP.map((e) => `| \`${e.env}\` | \`${e.path.join('.')}\` |`),
    '',
    'Also read:',
    '',
    ...Object.entries(AGENT_EXTRA_ENV).map(([k, v]) => wrap(sentence(v), '  ', `- \`${k}\`: `)),
    '',
    wrap(
      'Secrets belong in the environment, not in the file: on a gate, `/etc/gate-agent/secrets.env` ' +
        '(mode 0600) holds `GATE_KEY`, `MQTT_PASSWORD` and `GATE_CMD_SECRET`. They are never logged.',
    ),
    '',
    '## Settings',
    '',
    ...agentSection(root, envByPath, 3),
  ]
  return `${lines
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`
}

// ---------------------------------------------------------------------------------------------
// the cloud

const ENV_TYPE_NOTE: Partial<Record<EnvType, string>> = {
  bool: '`true` or `false` (also 1/0, yes/no, on/off)',
  'nullable-number': 'a number, or `none`',
}

/** Sections of the cloud page for the settings at the top level of the schema. */
const CLOUD_TOP_GROUP: Record<string, string> = {
  gateRateLimitPerMin: 'uploads',
  maxBodyBytes: 'uploads',
  maxRecordAgeDays: 'uploads',
  maxFutureMs: 'uploads',
  maxSkewMs: 'uploads',
  lateUploadMs: 'uploads',
  doubleEntryWindowMs: 'uploads',
  ingestCopy: 'uploads',
  redisUrl: 'cache',
  redisClusterNodes: 'cache',
  readReplicaUrls: 'replicas',
  replicaMaxLagMs: 'replicas',
  readYourWritesMs: 'replicas',
}

const CLOUD_GROUPS: Array<[string, string]> = [
  ['service', 'Service and database'],
  ['uploads', 'Gate uploads and incidents'],
  ['cache', 'Cache'],
  ['monitor', 'Performance monitor and load shedding'],
  ['replicas', 'Read replicas'],
  ['alerts', 'Alerts and MQTT'],
  ['fleet', 'Fleet monitor'],
  ['autoscale', 'Autoscaler'],
  ['partitions', 'Partitions'],
]

function nodeAt(root: Node, at: string[]): Node {
  let n: Node | undefined = root
  for (const k of at) n = n?.properties?.[k]
  if (!n) throw new Error(`no setting ${at.join('.')} in cloud/config.ts`)
  return n
}

function cloudEntry(e: EnvVar, root: Node): string {
  const node = nodeAt(root, e.path)
  const key = e.path[e.path.length - 1] ?? ''
  const t = ENV_TYPE_NOTE[e.type] ?? typeText(node)
  const facts = [t, defaultText(key, node), `setting \`${e.path.join('.')}\``]
  const head = wrap(`${facts.join('; ')}.`, '  ', `- \`${e.env}\`: `)
  const text = node.description ? `\n${wrap(sentence(node.description), '  ', '  ')}` : ''
  return `${head}${text}`
}

/** docs/reference/cloud-config.md */
export function renderCloudConfig(): string {
  const root = jsonSchema(cloudConfigSchema)
  const groups = new Map<string, EnvVar[]>()
  for (const e of CLOUD_ENV) {
    const top = e.path[0] ?? ''
    const nested = e.path.length > 1
    const g = nested ? top : (CLOUD_TOP_GROUP[top] ?? 'service')
    groups.set(g, [...(groups.get(g) ?? []), e])
  }
  const order = [
    ...CLOUD_GROUPS.map(([k]) => k),
    ...[...groups.keys()].filter((k) => !CLOUD_GROUPS.some(([g]) => g === k)),
  ]
  const lines = [
    '# gate-cloud configuration',
    '',
    '<!-- Generated by scripts/gen-reference.ts from cloud/config.ts (the schema and CLOUD_ENV).',
    '     Do not edit: change the .describe() texts in the schema and run `npm run docs:reference`. -->',
    '',
    wrap(
      '`gate-cloud` is configured by environment variables only (the compose file and the Kubernetes ' +
        'ConfigMap and Secret set them). Every command reads them once at start; every problem is ' +
        'reported at once and the program exits 2. Secrets, and URLs that may hold passwords, are ' +
        "redacted from the logs; a secret still set to the examples' `CHANGE-ME` placeholder is refused.",
    ),
    '',
  ]
  for (const g of order) {
    const entries = groups.get(g)
    if (!entries) continue
    const title = CLOUD_GROUPS.find(([k]) => k === g)?.[1] ?? g
    lines.push(`## ${title}`, '')
    for (const e of entries) lines.push(cloudEntry(e, root))
    lines.push('')
  }
  lines.push('## Other variables', '')
  lines.push(wrap('Read by one command only, or set by the platform:'), '')
  for (const [k, v] of Object.entries(CLOUD_EXTRA_ENV)) lines.push(wrap(sentence(v), '  ', `- \`${k}\`: `))
  lines.push(
    '',
    wrap(
      '`LOG_LEVEL` is read by `gate-cloud router` and `npm start` (gate-demo) too (the demo gives its ' +
        "children `LOG_LEVEL=warn` unless it is set), and `PORT` is the demo's default `--port`.",
    ),
  )
  return `${lines
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`
}

// ---------------------------------------------------------------------------------------------

/** Every generated page: its path from the repository root and its text. */
export function renderReferences(): Record<string, string> {
  const problems = [
    ...undocumentedEnv(['agent'], [...ENV_MAP.map((e) => e.env), ...Object.keys(AGENT_EXTRA_ENV)]),
    ...undocumentedEnv(['cloud', 'demo'], [...CLOUD_ENV.map((e) => e.env), ...Object.keys(CLOUD_EXTRA_ENV)]),
  ]
  if (problems.length > 0)
    throw new Error(
      `environment variables read but not documented (add them to the config tables or to the extras in scripts/gen-reference.ts): ${problems.join(', ')}`,
    )
  const pages: Record<string, string> = {
    'docs/reference/agent-config.md': renderAgentConfig(),
    'docs/reference/cloud-config.md': renderCloudConfig(),
  }
  for (const [file, text] of Object.entries(pages)) pages[file] = biomeFormat(file, text)
  return pages
}

/** The text as `npm run lint` wants it (Biome formats Markdown: it pads the tables). */
function biomeFormat(file: string, text: string): string {
  const r = spawnSync(
    path.join(ROOT, 'node_modules', '.bin', 'biome'),
    ['format', `--stdin-file-path=${file}`],
    {
      input: text,
      encoding: 'utf8',
    },
  )
  if (r.status !== 0) throw new Error(`biome format ${file} failed: ${r.stderr || r.error?.message}`)
  return r.stdout
}

/** The root of the repository, for readers of the pages. */
export const repositoryRoot = ROOT

function main(): number {
  const check = process.argv.includes('--check')
  const stale: string[] = []
  for (const [file, text] of Object.entries(renderReferences())) {
    const full = path.join(ROOT, file)
    let committed = ''
    try {
      committed = readFileSync(full, 'utf8')
    } catch {
      // not written yet
    }
    if (committed === text) continue
    stale.push(file)
    if (!check) writeFileSync(full, text)
  }
  if (check) {
    if (stale.length > 0) console.error(`out of date: ${stale.join(', ')} (run npm run docs:reference)`)
    return stale.length > 0 ? 1 : 0
  }
  process.stdout.write(
    stale.length > 0 ? `wrote ${stale.join(', ')}\n` : 'the reference pages are up to date\n',
  )
  return 0
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = main()
}
