import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { ControlClient, SOCKET_NAME } from '../../agent/control/client.js'

const ROOT = path.resolve(import.meta.dirname, '..', '..')
export const AGENT_BIN = path.join(ROOT, 'bin', 'gate-agent.js')
export const GATECTL_BIN = path.join(ROOT, 'bin', 'gatectl.js')
export const CLOUD_BIN = path.join(ROOT, 'bin', 'gate-cloud.js')

/** A gate-agent process started by a test, with its output collected. */
export interface AgentProcess {
  child: ChildProcess
  dataDir: string
  /** stdout so far (pino JSON lines) */
  stdout(): string
  stderr(): string
  /** resolves with the exit code (or the signal name) */
  exited: Promise<number | string>
}

/** Environment for child processes: no inherited GATE_* settings from the developer's shell. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('GATE_') && k !== 'MQTT_URL' && k !== 'LOG_LEVEL' && k !== 'NOTIFY_SOCKET') env[k] = v
  }
  return { ...env, ...extra }
}

/** Spawn `gate-agent run` with the given arguments. */
export function spawnAgent(dataDir: string, args: string[], env: Record<string, string> = {}): AgentProcess {
  const child = spawn(process.execPath, [AGENT_BIN, 'run', '--data-dir', dataDir, ...args], {
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout?.on('data', (b: Buffer) => {
    out += b.toString()
  })
  child.stderr?.on('data', (b: Buffer) => {
    err += b.toString()
  })
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1))
  })
  return { child, dataDir, stdout: () => out, stderr: () => err, exited }
}

/** Wait until the agent's control socket answers a status request. */
export async function waitForAgent(p: AgentProcess, timeoutMs = 30_000): Promise<void> {
  const socket = path.join(p.dataDir, SOCKET_NAME)
  const until = Date.now() + timeoutMs
  let exitedWith: number | string | null = null
  void p.exited.then((c) => {
    exitedWith = c
  })
  while (Date.now() < until) {
    if (exitedWith !== null)
      throw new Error(`agent exited (${exitedWith}) before it was up:\n${p.stderr()}\n${p.stdout()}`)
    if (existsSync(socket)) {
      try {
        const c = await ControlClient.connect(socket, 500)
        await c.request('status')
        c.close()
        return
      } catch {
        // not yet
      }
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`agent did not come up within ${timeoutMs} ms:\n${p.stderr()}\n${p.stdout()}`)
}

/** Run gatectl; never rejects (the exit code is part of the contract under test). */
export function gatectl(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
  cwd?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [GATECTL_BIN, ...args],
      { env: cleanEnv(env), timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, ...(cwd ? { cwd } : {}) },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

/** Run gate-agent with arguments and wait for it to exit (for start-up failures). */
export function runAgentToExit(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [AGENT_BIN, ...args],
      { env: cleanEnv(env), timeout: timeoutMs },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

/** Poll until `fn` returns a truthy value. */
export async function eventually<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 30_000,
  stepMs = 100,
): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < until) {
    try {
      const v = await fn()
      if (v) return v as NonNullable<T>
    } catch (err) {
      last = err
    }
    await new Promise((r) => setTimeout(r, stepMs))
  }
  throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`)
}

/** Run a gate-cloud command (migrate, gates add, ...) and wait for it; never rejects. */
export function cloudCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLOUD_BIN, ...args],
      { env: cleanEnv(env), timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    )
  })
}
