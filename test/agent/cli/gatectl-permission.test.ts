import { execFile } from 'node:child_process'
import { chmodSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SOCKET_NAME } from '../../../agent/control/client.js'
import { tempDir } from '../../support/helpers.js'
import {
  type AgentProcess,
  cleanEnv,
  GATECTL_BIN,
  spawnAgent,
  waitForAgent,
} from '../../support/process-helpers.js'

const root = process.getuid?.() === 0

/**
 * gatectl as a user who may not use the control socket: as root (the test machine), run as nobody,
 * for whom the agent's 0660 socket is closed; as anyone else, the socket is closed to everyone.
 */
function gatectlWithoutAccess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [GATECTL_BIN, ...args],
      { env: cleanEnv({ HOME: '/tmp' }), timeout: 60_000, ...(root ? { uid: 65534, gid: 65534 } : {}) },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    )
  })
}

describe('gatectl without permission to use the control socket', () => {
  const tmp = tempDir()
  const dataDir = path.join(tmp.dir, 'data')
  let agent: AgentProcess

  beforeAll(async () => {
    // a data directory others may enter (the database is readable): only the socket is closed
    chmodSync(tmp.dir, 0o755)
    mkdirSync(dataDir, { mode: 0o755 })
    agent = spawnAgent(dataDir, ['--source', 'sim'])
    await waitForAgent(agent)
    if (!root) chmodSync(path.join(dataDir, SOCKET_NAME), 0o000)
  })

  afterAll(async () => {
    if (agent.child.exitCode === null) {
      agent.child.kill('SIGKILL')
      await agent.exited
    }
    tmp.cleanup()
  })

  it('says so and what to do, never "daemon DOWN" (status, tail, doctor)', async () => {
    const socket = path.join(dataDir, SOCKET_NAME)
    for (const cmd of [['status'], ['tail', '--timeout', '1']]) {
      const r = await gatectlWithoutAccess(['--data-dir', dataDir, ...cmd])
      expect(r.code, `${cmd[0]}: ${r.stdout}${r.stderr}`).toBe(1)
      expect(r.stderr).toContain(`no permission to use the control socket ${socket}`)
      expect(r.stderr).toMatch(/add yourself to the \S+ group .*or run as the \S+ user/)
      expect(r.stdout + r.stderr).not.toMatch(/DOWN|not running/)
    }
    const json = await gatectlWithoutAccess(['--data-dir', dataDir, '--json', 'status'])
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'E_FORBIDDEN' } })
    const doctor = await gatectlWithoutAccess(['--data-dir', dataDir, 'doctor'])
    expect(doctor.stdout).toMatch(/\[FAIL\] agent daemon: no permission to use the control socket/)
    expect(doctor.stdout).not.toMatch(/agent daemon: not running/)
  }, 120_000)
})
