import { createReadStream, type ReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import { createInterface, type Interface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { errorMessage, GateError } from '../../shared/errors.js'
import { lineToAdvert, parseCaptureHeader, parseCaptureLine } from '../../shared/replay.js'
import type { Clock } from '../clock.js'
import type { ReplayConfig } from '../config/schema.js'
import type { BleSource, SourceHandlers, SourceStatus } from './source.js'

/** At fast speed (0), let the event loop breathe after this many adverts. */
const YIELD_EVERY = 256
/** One warning per this many ms about bad lines (the count is in status). */
const WARN_EVERY_MS = 10_000
const QUIET_AFTER_MS = 5_000

/**
 * Plays a capture made by `gatectl capture` (format in shared/replay.ts), streaming it line by line so
 * a capture of any size runs in constant memory. `speed` 1 is real time, 2 twice as fast, 0 as fast
 * as possible. Bad lines are skipped, counted and reported; a missing file or a file that is not a
 * capture fails start() with E_REPLAY_FILE.
 */
export class ReplaySource implements BleSource {
  readonly kind = 'replay' as const
  private handlers: SourceHandlers | null = null
  private stream: ReadStream | null = null
  private lineReader: Interface | null = null
  private playing: Promise<void> | null = null
  private restarts = 0
  private adverts = 0
  private badLines = 0
  private lastAdvertAt: number | null = null
  private lastWarnAt = Number.NEGATIVE_INFINITY
  private finished = false

  constructor(
    private readonly cfg: ReplayConfig,
    private readonly deps: { clock: Clock },
  ) {}

  async start(handlers: SourceHandlers): Promise<void> {
    if (this.handlers) throw new GateError('E_INTERNAL', 'the replay source is already started')
    const file = this.cfg.file
    if (!file)
      throw new GateError(
        'E_REPLAY_FILE',
        'the replay source needs a capture file (--replay FILE or source.replay.file)',
      )
    await checkHeader(file)
    this.handlers = handlers
    this.finished = false
    handlers.state?.('poweredOn')
    this.playing = this.play(file, handlers).catch((err) => {
      if (this.handlers === handlers) {
        handlers.warn?.(
          new GateError('E_REPLAY_FILE', `replay stopped: ${errorMessage(err)}`, { cause: err }),
        )
      }
    })
  }

  async stop(): Promise<void> {
    this.handlers = null
    this.lineReader?.close()
    this.stream?.destroy()
    const playing = this.playing
    this.playing = null
    await playing
  }

  async restartScan(): Promise<void> {
    this.restarts++
  }

  status(): SourceStatus {
    const running = this.handlers !== null
    const quiet = this.lastAdvertAt === null || this.deps.clock.mono() - this.lastAdvertAt > QUIET_AFTER_MS
    const parts = [
      `file ${this.cfg.file ?? '-'}`,
      `speed ${this.cfg.speed === 0 ? 'max' : `${this.cfg.speed}x`}`,
    ]
    if (this.badLines > 0) parts.push(`${this.badLines} bad lines skipped`)
    if (this.finished) parts.push('end of capture')
    return {
      kind: 'replay',
      adapterState: 'poweredOn',
      scanning: running && !this.finished,
      radio: !running || this.finished ? 'off' : quiet ? 'quiet' : 'scanning',
      scanRestarts: this.restarts,
      lastAdvertAt: this.lastAdvertAt,
      adverts: this.adverts,
      detail: parts.join(', '),
    }
  }

  /** Lines that could not be played (counted, skipped). */
  get skippedLines(): number {
    return this.badLines
  }

  private async play(file: string, handlers: SourceHandlers): Promise<void> {
    const clock = this.deps.clock
    const speed = this.cfg.speed
    do {
      if (this.handlers !== handlers) return
      const stream = createReadStream(file, { encoding: 'utf8' })
      let streamError: Error | null = null
      stream.on('error', (err) => {
        streamError = err
      })
      const lineReader = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })
      this.stream = stream
      this.lineReader = lineReader
      const passStart = clock.mono()
      let lineNo = 0
      let sinceYield = 0
      for await (const text of lineReader) {
        if (this.handlers !== handlers) return
        lineNo++
        if (lineNo === 1 || text.trim() === '') continue // header (checked at start) and blank lines
        const parsed = parseCaptureLine(text)
        if (!parsed.ok) {
          this.bad(handlers, file, lineNo, parsed.why)
          continue
        }
        const line = parsed.line
        if (speed > 0) {
          const due = passStart + line.t / speed
          const wait = due - clock.mono()
          if (wait > 1) await sleep(wait)
        } else if (++sinceYield >= YIELD_EVERY) {
          sinceYield = 0
          await new Promise<void>((r) => setImmediate(r))
        }
        if (this.handlers !== handlers) return
        const ts = clock.mono()
        this.adverts++
        this.lastAdvertAt = ts
        try {
          handlers.advert({ ...lineToAdvert(line), ts })
        } catch (err) {
          this.warn(
            handlers,
            new GateError('E_INTERNAL', `advert handler threw: ${errorMessage(err)}`, { cause: err }),
          )
        }
      }
      if (this.handlers !== handlers) return
      if (streamError) throw streamError
    } while (this.cfg.loop)
    this.finished = true
    handlers.end?.()
  }

  private bad(handlers: SourceHandlers, file: string, lineNo: number, why: string): void {
    this.badLines++
    this.warn(
      handlers,
      new GateError(
        'E_REPLAY_FILE',
        `${file}:${lineNo}: skipped (${why}); ${this.badLines} bad lines so far`,
      ),
    )
  }

  private warn(handlers: SourceHandlers, err: GateError): void {
    const now = this.deps.clock.mono()
    if (now - this.lastWarnAt < WARN_EVERY_MS) return
    this.lastWarnAt = now
    handlers.warn?.(err)
  }
}

/** The file exists and starts with a capture header, or E_REPLAY_FILE says what is wrong. */
async function checkHeader(file: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>
  try {
    handle = await open(file, 'r')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new GateError(
      'E_REPLAY_FILE',
      `cannot open capture ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? errorMessage(err))}`,
      {
        cause: err,
      },
    )
  }
  try {
    // a directory opens, and only its read fails (EISDIR): said as what it is
    if ((await handle.stat()).isDirectory())
      throw new GateError(
        'E_REPLAY_FILE',
        `${file} is a directory, not a capture file (make one with gatectl capture -o FILE)`,
      )
    const buf = Buffer.alloc(4096)
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0).catch((err: NodeJS.ErrnoException) => {
      throw new GateError('E_REPLAY_FILE', `cannot read capture ${file}: ${err.code ?? errorMessage(err)}`, {
        cause: err,
      })
    })
    const first = buf.toString('utf8', 0, bytesRead).split('\n', 1)[0] ?? ''
    if (parseCaptureHeader(first) === null) {
      throw new GateError(
        'E_REPLAY_FILE',
        `${file} is not a replay capture: the first line must be a header like {"capture":1,"startedAt":"..."} (make one with gatectl capture)`,
      )
    }
  } finally {
    await handle.close()
  }
}
