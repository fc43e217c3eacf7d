import { chmodSync, existsSync, unlinkSync } from 'node:fs'
import net from 'node:net'
import type { Logger } from 'pino'
import { ZodError } from 'zod'
import {
  type ControlMethod,
  controlRequestSchema,
  MAX_CONTROL_LINE,
  type StreamName,
  subscribeParamsSchema,
} from '../../shared/control.js'
import { GateError } from '../../shared/errors.js'

/** A method handler: gets the validated params, returns a JSON-able result or throws a GateError. */
export type ControlHandler = (params: Record<string, unknown>) => unknown | Promise<unknown>

/** Where streams come from: subscribe returns an unsubscribe function. */
export type StreamSource = (stream: StreamName, send: (data: unknown) => void) => () => void

/** Most bytes queued to a slow subscriber before its stream messages are dropped. */
const MAX_BACKLOG = 1024 * 1024
/** requests of one connection waiting to be handled before its socket is paused */
const QUEUED_LINES = 64

/**
 * The control socket: a Unix socket in the data directory speaking JSON lines (shared/control.ts).
 * gatectl asks for status and subscribes to live streams through it. Bad lines get an error answer;
 * a client can never crash the daemon. A second daemon on the same data directory is refused.
 */
export class ControlServer {
  private server: net.Server | null = null
  private readonly clients = new Set<net.Socket>()
  /** stream messages dropped because a subscriber read too slowly */
  dropped = 0

  constructor(
    private readonly socketPath: string,
    private readonly handlers: Partial<Record<ControlMethod, ControlHandler>>,
    private readonly streams: StreamSource,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    if (existsSync(this.socketPath)) {
      await refuseIfAnotherDaemon(this.socketPath)
      unlinkSync(this.socketPath) // stale socket from a killed agent
    }
    const server = net.createServer((sock) => this.accept(sock))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.socketPath, () => {
        server.off('error', reject)
        resolve()
      })
    })
    server.on('error', (err) => this.log.error({ err }, 'control socket error'))
    chmodSync(this.socketPath, 0o660)
    this.server = server
  }

  async stop(): Promise<void> {
    const server = this.server
    if (!server) return
    this.server = null
    for (const client of this.clients) client.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  private accept(sock: net.Socket): void {
    this.clients.add(sock)
    const subs = new Map<string, () => void>()
    let buf = ''
    // a connection's requests are handled one after another; past QUEUED_LINES waiting, the socket
    // is not read until they are done (a client that floods requests cannot take the agent's memory
    // or event loop away from decisions)
    const lines: string[] = []
    let handling = false
    const handleQueued = async () => {
      if (handling) return
      handling = true
      while (lines.length > 0 && !sock.destroyed) {
        await this.handleLine(sock, lines.shift() as string, subs)
        if (sock.isPaused() && lines.length < QUEUED_LINES / 2) sock.resume()
      }
      handling = false
    }
    sock.setEncoding('utf8')
    sock.on('data', (chunk: string) => {
      buf += chunk
      if (buf.length > MAX_CONTROL_LINE && !buf.includes('\n')) {
        this.reply(sock, {
          id: 0,
          ok: false,
          error: { code: 'E_CONTROL_PROTOCOL', message: 'line too long' },
        })
        sock.destroy()
        return
      }
      let newline = buf.indexOf('\n')
      while (newline >= 0) {
        const line = buf.slice(0, newline).trim()
        buf = buf.slice(newline + 1)
        if (line) lines.push(line)
        newline = buf.indexOf('\n')
      }
      if (lines.length >= QUEUED_LINES) sock.pause()
      void handleQueued()
    })
    sock.on('error', (err) => this.log.debug({ err }, 'control client error'))
    sock.on('close', () => {
      for (const off of subs.values()) off()
      subs.clear()
      this.clients.delete(sock)
    })
  }

  private async handleLine(sock: net.Socket, line: string, subs: Map<string, () => void>): Promise<void> {
    let json: unknown
    try {
      json = JSON.parse(line)
    } catch {
      this.reply(sock, { id: 0, ok: false, error: { code: 'E_CONTROL_PROTOCOL', message: 'not JSON' } })
      return
    }
    const req = controlRequestSchema.safeParse(json)
    if (!req.success) {
      const id = typeof (json as { id?: unknown })?.id === 'number' ? (json as { id: number }).id : 0
      const message = req.error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`).join('; ')
      this.reply(sock, { id, ok: false, error: { code: 'E_CONTROL_PROTOCOL', message } })
      return
    }
    const { id, method, params = {} } = req.data
    try {
      if (method === 'subscribe') {
        const subscription = subscribeParamsSchema.parse(params)
        // once per stream and connection, however often it is asked for
        for (const stream of subscription.streams)
          if (!subs.has(stream))
            subs.set(
              stream,
              this.streams(stream, (data) => this.push(sock, { stream, data })),
            )
        this.reply(sock, { id, ok: true, result: { subscribed: subscription.streams } })
        return
      }
      const handler = this.handlers[method]
      if (!handler) throw new GateError('E_CONTROL_PROTOCOL', `method ${method} is not available`)
      const result = await handler(params)
      this.reply(sock, { id, ok: true, result: result ?? null })
    } catch (thrown) {
      // params that fail a method's schema are the client's mistake (a 65-character token), not ours
      const err = thrown instanceof ZodError ? inputError(method, thrown) : thrown
      const code = err instanceof GateError ? err.code : 'E_INTERNAL'
      const message = err instanceof GateError ? err.message : 'internal error (see the agent log)'
      if (!(err instanceof GateError)) this.log.error({ err, method }, 'control handler failed')
      else if (code === 'E_INPUT') this.log.debug({ method, message }, 'control request refused')
      this.reply(sock, { id, ok: false, error: { code, message } })
    }
  }

  private reply(sock: net.Socket, msg: unknown): void {
    if (sock.destroyed) return
    if (sock.writableLength > MAX_BACKLOG) {
      // the client does not read its answers: it is let go rather than buffered without end
      this.log.warn(
        { buffered: sock.writableLength },
        'control client does not read its answers; disconnected',
      )
      sock.destroy()
      return
    }
    sock.write(`${JSON.stringify(msg)}\n`)
  }

  private push(sock: net.Socket, msg: unknown): void {
    if (sock.destroyed) return
    if (sock.writableLength > MAX_BACKLOG) {
      this.dropped++
      return
    }
    sock.write(`${JSON.stringify(msg)}\n`)
  }
}

/** E_INPUT naming the method and each bad parameter. */
function inputError(method: string, err: ZodError): GateError {
  const issues = err.issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`).join('; ')
  return new GateError('E_INPUT', `${method}: ${issues}`, { cause: err })
}

/**
 * Throws E_DAEMON_RUNNING when another agent answers on this control socket. The agent asks before
 * it opens its database (a second daemon must not write a boots row into the first one's file, nor
 * run an integrity check on it) and again when it binds the socket.
 */
export async function refuseIfAnotherDaemon(socketPath: string): Promise<void> {
  if (existsSync(socketPath) && (await isAlive(socketPath))) {
    throw new GateError(
      'E_DAEMON_RUNNING',
      `another gate-agent is already running on this data directory (${socketPath} answers)`,
    )
  }
}

/** Whether something answers on a Unix socket. */
export function isAlive(socketPath: string, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(socketPath)
    const done = (alive: boolean) => {
      clearTimeout(timer)
      sock.destroy()
      resolve(alive)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
  })
}
