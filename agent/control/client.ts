import { readFileSync, statSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {
  type ControlMessage,
  type ControlMethod,
  controlMessageSchema,
  type StreamName,
} from '../../shared/control.js'
import { GateError } from '../../shared/errors.js'

/** The file name of the control socket inside the data directory. */
export const SOCKET_NAME = 'gate-agent.sock'

/** A client of the agent's control socket (used by gatectl and the tests). */
export class ControlClient {
  private nextId = 1
  private buf = ''
  private readonly pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (err: Error) => void }
  >()
  private readonly streamHandlers = new Map<StreamName, (data: unknown) => void>()

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8')
    sock.on('data', (chunk: string) => this.onData(chunk))
    sock.on('close', () => {
      for (const waiting of this.pending.values())
        waiting.reject(new GateError('E_CONTROL_UNAVAILABLE', 'agent closed the connection'))
      this.pending.clear()
      this.onClose?.()
    })
    sock.on('error', () => {})
  }

  /** called when the daemon goes away */
  onClose: (() => void) | undefined

  /** Connect, or reject with E_CONTROL_UNAVAILABLE when no daemon listens. */
  static connect(socketPath: string, timeoutMs = 1000): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(socketPath)
      const timer = setTimeout(() => {
        sock.destroy()
        reject(new GateError('E_CONTROL_UNAVAILABLE', `no answer on ${socketPath}`))
      }, timeoutMs)
      sock.once('connect', () => {
        clearTimeout(timer)
        resolve(new ControlClient(sock))
      })
      sock.once('error', (err) => {
        clearTimeout(timer)
        const code = (err as NodeJS.ErrnoException).code
        // the agent may well be running: it is this user who may not talk to it
        if (code === 'EACCES' || code === 'EPERM') reject(permissionError(socketPath, code))
        else
          reject(new GateError('E_CONTROL_UNAVAILABLE', `the agent is not running (${socketPath}: ${code})`))
      })
    })
  }

  /** Call a method; resolves with its result or rejects with a GateError carrying the daemon's code. */
  request(method: ControlMethod, params?: Record<string, unknown>, timeoutMs = 5000): Promise<unknown> {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new GateError('E_TIMEOUT', `the agent did not answer ${method} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer)
          resolve(value)
        },
        reject: (err) => {
          clearTimeout(timer)
          reject(err)
        },
      })
      this.sock.write(`${JSON.stringify({ id, method, params })}\n`)
    })
  }

  /** Subscribe to live streams; `onData` gets each message's data. */
  async subscribe(streams: StreamName[], onData: (stream: StreamName, data: unknown) => void): Promise<void> {
    for (const stream of streams) this.streamHandlers.set(stream, (data) => onData(stream, data))
    await this.request('subscribe', { streams })
  }

  close(): void {
    this.sock.end()
    this.sock.destroy()
  }

  private onData(chunk: string): void {
    this.buf += chunk
    let newline = this.buf.indexOf('\n')
    while (newline >= 0) {
      const line = this.buf.slice(0, newline)
      this.buf = this.buf.slice(newline + 1)
      newline = this.buf.indexOf('\n')
      let msg: ControlMessage
      try {
        msg = controlMessageSchema.parse(JSON.parse(line))
      } catch {
        continue // a line we cannot read is skipped; the daemon is the trusted side
      }
      if ('stream' in msg) {
        this.streamHandlers.get(msg.stream)?.(msg.data)
      } else {
        const waiting = this.pending.get(msg.id)
        if (!waiting) continue
        this.pending.delete(msg.id)
        if (msg.ok) waiting.resolve(msg.result)
        else waiting.reject(new GateError(msg.error.code as 'E_INPUT', msg.error.message))
      }
    }
  }
}

/**
 * E_FORBIDDEN for a control socket this user may not use, naming the group to join and the user to
 * run as: those of the socket, or of the nearest directory above it this user can see.
 */
export function permissionError(socketPath: string, code: string): GateError {
  let owner: { uid: number; gid: number } | null = null
  for (let dir = socketPath; owner === null; dir = path.dirname(dir)) {
    try {
      owner = statSync(dir)
    } catch {
      if (dir === path.dirname(dir)) break
    }
  }
  const group = owner ? nameOf('/etc/group', owner.gid) : 'gate'
  const user = owner ? nameOf('/etc/passwd', owner.uid) : 'gate'
  return new GateError(
    'E_FORBIDDEN',
    `no permission to use the control socket ${socketPath} (${code}); add yourself to the ${group} group ` +
      `(sudo usermod -aG ${group} "$USER", then log in again) or run as the ${user} user (sudo -u ${user} gatectl ...)`,
    { context: { socketPath, code } },
  )
}

/** The name of a user or group id from /etc/passwd or /etc/group (name:x:id:...), or the id itself. */
function nameOf(file: string, id: number): string {
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [name, , idField] = line.split(':')
      if (name && Number(idField) === id) return name
    }
  } catch {
    // no such file (a container): the number says it
  }
  return String(id)
}
