import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'

export const ARTIFACTS = path.resolve(import.meta.dirname, '..', '..', 'test-artifacts', 'chaos')

/** One line of the results table: what was tried and what came out of it. */
export interface ChaosResult {
  suite: string
  what: string
  tried: number | string
  outcome: string
  lost?: number
}

/** Results of one suite, written for the report that the global teardown prints. */
export function writeResults(suite: string, rows: Omit<ChaosResult, 'suite'>[]): void {
  mkdirSync(ARTIFACTS, { recursive: true })
  writeFileSync(path.join(ARTIFACTS, `${suite}.json`), JSON.stringify(rows.map((r) => ({ suite, ...r }))))
}

const sh = (cmd: string) => execFileSync('bash', ['-c', cmd], { stdio: 'pipe', timeout: 60_000 }).toString()

export const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })

async function waitPort(port: number, open: boolean, ms = 30_000): Promise<void> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if ((await portOpen(port)) === open) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`port ${port} did not ${open ? 'open' : 'close'} within ${ms} ms`)
}

/** The machine's servers, stopped and started the way DEVELOPERS.md starts them. */
export const servers = {
  async restartPostgres(): Promise<void> {
    sh('pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main restart')
    await waitPort(5432, true)
  },
  async stopRedis(): Promise<void> {
    sh('redis-cli -p 6379 shutdown nosave || true')
    await waitPort(6379, false)
  },
  async startRedis(): Promise<void> {
    sh(
      'mkdir -p /var/lib/redis /var/log/redis && redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log',
    )
    await waitPort(6379, true)
  },
  async stopBroker(): Promise<void> {
    sh('pkill -x mosquitto || true')
    await waitPort(1883, false)
  },
  async startBroker(): Promise<void> {
    sh('mosquitto -d -c /etc/mosquitto/mosquitto.conf')
    await waitPort(1883, true)
  },
}
