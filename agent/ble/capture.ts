import { closeSync, constants, fsyncSync, openSync, writeSync } from 'node:fs'
import { GateError } from '../../shared/errors.js'
import { advertToLine, CAPTURE_FORMAT_VERSION, type CapturableAdvert } from '../../shared/replay.js'

/**
 * Writes a replay capture (shared/replay.ts) to a file. Refuses to overwrite an existing file unless
 * asked. Lines are buffered and written in blocks; close() flushes and fsyncs.
 */
export class CaptureWriter {
  private fd: number
  private buf: string[] = []
  private first: number | null = null
  count = 0

  constructor(
    file: string,
    header: { gateId?: string; source?: string; startedAt?: Date },
    opts: { overwrite?: boolean } = {},
  ) {
    const flags = opts.overwrite
      ? constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC
      : constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL
    try {
      this.fd = openSync(file, flags, 0o640)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw new GateError(
        'E_INPUT',
        code === 'EEXIST'
          ? `${file} exists; choose another name or pass --overwrite`
          : `cannot create ${file}: ${code ?? err}`,
        { cause: err },
      )
    }
    const firstLine = {
      capture: CAPTURE_FORMAT_VERSION,
      startedAt: (header.startedAt ?? new Date()).toISOString(),
      ...(header.gateId ? { gateId: header.gateId } : {}),
      ...(header.source ? { source: header.source } : {}),
    }
    writeSync(this.fd, `${JSON.stringify(firstLine)}\n`)
  }

  /** Append one advert heard at monotonic time `ts` (ms). */
  write(advert: CapturableAdvert, ts: number): void {
    if (this.first === null) this.first = ts
    this.buf.push(JSON.stringify(advertToLine(advert, ts - this.first)))
    this.count++
    if (this.buf.length >= 256) this.flush()
  }

  flush(): void {
    if (this.buf.length === 0) return
    writeSync(this.fd, `${this.buf.join('\n')}\n`)
    this.buf = []
  }

  close(): void {
    if (this.fd < 0) return
    this.flush()
    fsyncSync(this.fd)
    closeSync(this.fd)
    this.fd = -1
  }
}
