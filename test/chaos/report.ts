import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { ARTIFACTS, type ChaosResult } from './harness.js'

/** Before the suite: no results of an earlier run. After it: the results table, printed and kept. */
export function setup(): () => void {
  rmSync(ARTIFACTS, { recursive: true, force: true })
  mkdirSync(ARTIFACTS, { recursive: true })
  return () => {
    if (!existsSync(ARTIFACTS)) return
    const rows: ChaosResult[] = readdirSync(ARTIFACTS)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .flatMap((f) => JSON.parse(readFileSync(path.join(ARTIFACTS, f), 'utf8')) as ChaosResult[])
    if (rows.length === 0) return
    const table = [
      `Reliability and security suite (npm run test:chaos), ${new Date().toISOString().slice(0, 10)}:`,
      '',
      '| suite | what | tried | outcome | records lost |',
      '| --- | --- | ---: | --- | ---: |',
      ...rows.map(
        (r) =>
          `| ${r.suite} | ${r.what} | ${typeof r.tried === 'number' ? r.tried.toLocaleString('en-US') : r.tried} | ${r.outcome} | ${r.lost ?? '-'} |`,
      ),
    ].join('\n')
    writeFileSync(path.join(ARTIFACTS, 'results.md'), `${table}\n`)
    process.stdout.write(`\n${table}\n`)
  }
}
