import net from 'node:net'
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
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  private readonly streamHandlers = new Map<StreamName, (data: unknown) => void>()

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8')
    sock.on('data', (chunk: string) => this.onData(chunk))
    sock.on('close', () => {
      for (const p of this.pending.values())
        p.reject(new GateError('E_CONTROL_UNAVAILABLE', 'agent closed the connection'))
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
        reject(
          new GateError(
            'E_CONTROL_UNAVAILABLE',
            `the agent is not running (${socketPath}: ${(err as NodeJS.ErrnoException).code})`,
          ),
        )
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
        resolve: (v) => {
          clearTimeout(timer)
          resolve(v)
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        },
      })
      this.sock.write(`${JSON.stringify({ id, method, params })}\n`)
    })
  }

  /** Subscribe to live streams; `onData` gets each message's data. */
  async subscribe(streams: StreamName[], onData: (stream: StreamName, data: unknown) => void): Promise<void> {
    for (const s of streams) this.streamHandlers.set(s, (d) => onData(s, d))
    await this.request('subscribe', { streams })
  }

  close(): void {
    this.sock.end()
    this.sock.destroy()
  }

  private onData(chunk: string): void {
    this.buf += chunk
    let nl = this.buf.indexOf('\n')
    while (nl >= 0) {
      const line = this.buf.slice(0, nl)
      this.buf = this.buf.slice(nl + 1)
      nl = this.buf.indexOf('\n')
      let msg: ControlMessage
      try {
        msg = controlMessageSchema.parse(JSON.parse(line))
      } catch {
        continue // a line we cannot read is skipped; the daemon is the trusted side
      }
      if ('stream' in msg) {
        this.streamHandlers.get(msg.stream)?.(msg.data)
      } else {
        const p = this.pending.get(msg.id)
        if (!p) continue
        this.pending.delete(msg.id)
        if (msg.ok) p.resolve(msg.result)
        else p.reject(new GateError(msg.error.code as 'E_INPUT', msg.error.message))
      }
    }
  }
}
