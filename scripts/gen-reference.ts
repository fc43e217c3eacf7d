/**
 * npm run docs:reference [-- --check]
 *
 * Writes docs/reference/agent-config.md and docs/reference/cloud-config.md from the code: the
 * agent's zod schema (agent/config/schema.ts) with the environment variables of
 * agent/config/load.ts, and gate-cloud's schema and environment table (cloud/config.ts). Each
 * setting's text is its `.describe()`. With --check nothing is written: the exit code says whether
 * the committed pages are up to date (test/scripts/docs-reference.test.ts does the same in
 * `npm test`).
 *
 * The parts: gen-reference/schema.ts walks a zod schema, gen-reference/text.ts words a setting,
 * gen-reference/agent-page.ts and cloud-page.ts write the two pages, gen-reference/env.ts holds the
 * variables read outside the config tables and checks that none is left out.
 */

import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { renderAgentConfig } from './gen-reference/agent-page.js'
import { renderCloudConfig } from './gen-reference/cloud-page.js'
import { assertEnvDocumented, ROOT } from './gen-reference/env.js'

export { renderAgentConfig } from './gen-reference/agent-page.js'
export { renderCloudConfig } from './gen-reference/cloud-page.js'
export { undocumentedEnv } from './gen-reference/env.js'

/** Every generated page: its path from the repository root and its text. */
export function renderReferences(): Record<string, string> {
  assertEnvDocumented()
  const pages: Record<string, string> = {
    'docs/reference/agent-config.md': renderAgentConfig(),
    'docs/reference/cloud-config.md': renderCloudConfig(),
  }
  for (const [file, text] of Object.entries(pages)) pages[file] = biomeFormat(file, text)
  return pages
}

/** The text as `npm run lint` wants it (Biome formats Markdown: it pads the tables). */
function biomeFormat(file: string, text: string): string {
  const r = spawnSync(
    path.join(ROOT, 'node_modules', '.bin', 'biome'),
    ['format', `--stdin-file-path=${file}`],
    {
      input: text,
      encoding: 'utf8',
    },
  )
  if (r.status !== 0) throw new Error(`biome format ${file} failed: ${r.stderr || r.error?.message}`)
  return r.stdout
}

/** The root of the repository, for readers of the pages. */
export const repositoryRoot = ROOT

function main(): number {
  const check = process.argv.includes('--check')
  const stale: string[] = []
  for (const [file, text] of Object.entries(renderReferences())) {
    const full = path.join(ROOT, file)
    let committed = ''
    try {
      committed = readFileSync(full, 'utf8')
    } catch {
      // not written yet
    }
    if (committed === text) continue
    stale.push(file)
    if (!check) writeFileSync(full, text)
  }
  if (check) {
    if (stale.length > 0) console.error(`out of date: ${stale.join(', ')} (run npm run docs:reference)`)
    return stale.length > 0 ? 1 : 0
  }
  process.stdout.write(
    stale.length > 0 ? `wrote ${stale.join(', ')}\n` : 'the reference pages are up to date\n',
  )
  return 0
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = main()
}
