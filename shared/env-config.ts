/** How an environment variable's text becomes a config value. `nullable-number` also takes none/off/never. */
export type EnvType = 'string' | 'int' | 'number' | 'bool' | 'nullable-number'

/** One environment variable and where it lands in a program's config object. */
export interface EnvVar {
  env: string
  path: string[]
  type: EnvType
}

type Obj = Record<string, unknown>

/** Set `value` at `keys` in `target`, creating the objects on the way. */
export function setPath(target: Obj, keys: readonly string[], value: unknown): void {
  let cur = target
  for (const key of keys.slice(0, -1)) {
    const next = cur[key]
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[key] = {}
    cur = cur[key] as Obj
  }
  const last = keys[keys.length - 1]
  if (last !== undefined) cur[last] = value
}

function coerce(raw: string, type: EnvType, env: string, problems: string[]): unknown {
  if (type === 'string') return raw
  if (type === 'bool') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true
    if (/^(0|false|no|off)$/i.test(raw)) return false
    problems.push(`${env}: expected true/false, got "${raw}"`)
    return undefined
  }
  if (type === 'nullable-number' && /^(none|off|never)$/i.test(raw)) return null
  const n = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(n) || (type === 'int' && !Number.isInteger(n))) {
    problems.push(`${env}: expected ${type === 'int' ? 'an integer' : 'a number'}, got "${raw}"`)
    return undefined
  }
  return n
}

/**
 * The config object the environment describes: every set variable of `map`, converted to its type.
 * Variables that cannot be converted are reported in `problems` (all of them, not the first).
 */
export function readEnv(map: readonly EnvVar[], env: NodeJS.ProcessEnv, problems: string[]): Obj {
  const out: Obj = {}
  for (const { env: name, path, type } of map) {
    const raw = env[name]
    if (raw === undefined || raw === '') continue
    const value = coerce(raw, type, name, problems)
    if (value !== undefined) setPath(out, path, value)
  }
  return out
}
