/**
 * The environment variables the reference lists besides the config tables, and the check that every
 * variable the sources read is listed somewhere.
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ENV_MAP } from '../../agent/config/load.js'
import { CLOUD_ENV } from '../../cloud/config.js'

/** The root of the repository: the sources are read, and the pages written, below it. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

// environment variables read outside the config tables (each must be listed: see undocumentedEnv)

/** Environment variables the agent reads besides ENV_MAP. */
export const AGENT_EXTRA_ENV: Record<string, string> = {
  GATE_CONFIG: 'the JSON config file, when `--config` is not given',
  NOTIFY_SOCKET: 'set by systemd (`Type=notify`): where the agent says READY, WATCHDOG and STOPPING',
  WATCHDOG_USEC: 'set by systemd (`WatchdogSec`): the agent pings at half of it',
  SUDO_USER: 'set by sudo: `gatectl admit` and `gatectl deny` record this login as who decided',
}

/** Environment variables gate-cloud and the demo (`npm start`) read besides CLOUD_ENV. */
export const CLOUD_EXTRA_ENV: Record<string, string> = {
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

/** Throws, naming them, if the agent's or the cloud's sources read variables that nothing documents. */
export function assertEnvDocumented(): void {
  const problems = [
    ...undocumentedEnv(['agent'], [...ENV_MAP.map((e) => e.env), ...Object.keys(AGENT_EXTRA_ENV)]),
    ...undocumentedEnv(['cloud', 'demo'], [...CLOUD_ENV.map((e) => e.env), ...Object.keys(CLOUD_EXTRA_ENV)]),
  ]
  if (problems.length > 0)
    throw new Error(
      `environment variables read but not documented (add them to the config tables or to the extras in scripts/gen-reference/env.ts): ${problems.join(', ')}`,
    )
}
