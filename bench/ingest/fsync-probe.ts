import { spawn } from 'node:child_process'

/**
 * What the disk alone gives during the drain: another process overwrites 4 KB of a preallocated file
 * and fdatasyncs it every 20 ms (a decision's commit does as much: a few WAL pages, one fdatasync).
 * Its own event loop, so the agent's work is not in these figures. `stop` gives each sync's time, ms.
 */
export function startFsyncProbe(file: string): { pid: number; stop: () => Promise<number[]> } {
  const child = spawn(process.execPath, ['-e', FSYNC_PROBE, file], { stdio: ['pipe', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const exited = new Promise((r) => child.once('exit', r))
  return {
    pid: child.pid as number,
    stop: async () => {
      child.stdin.end()
      await exited
      return JSON.parse(out || '[]') as number[]
    },
  }
}

const FSYNC_PROBE = `
const fs = require('node:fs')
const size = 1 << 20
const fd = fs.openSync(process.argv[1], 'w')
fs.writeSync(fd, Buffer.alloc(size))
fs.fsyncSync(fd)
const page = Buffer.alloc(4096, 7)
const lat = []
let pos = 0
const timer = setInterval(() => {
  const t = performance.now()
  fs.writeSync(fd, page, 0, page.length, pos)
  fs.fdatasyncSync(fd)
  lat.push(performance.now() - t)
  pos = (pos + page.length) % size
}, 20)
process.stdin.on('end', () => {
  clearInterval(timer)
  process.stdout.write(JSON.stringify(lat))
})
process.stdin.resume()
`
