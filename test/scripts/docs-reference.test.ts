import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { renderReferences, repositoryRoot } from '../../scripts/gen-reference.js'

// docs/reference/agent-config.md and cloud-config.md are generated from the config schemas: a
// setting added, removed or described differently must reach the committed pages
describe('generated reference pages', () => {
  const pages = renderReferences()
  for (const [file, text] of Object.entries(pages)) {
    it(`${file} matches the code`, () => {
      let committed = ''
      try {
        committed = readFileSync(path.join(repositoryRoot, file), 'utf8')
      } catch {
        // missing: reported below
      }
      if (committed !== text)
        expect.fail(`${file} is out of date: run \`npm run docs:reference\` and commit the result`)
    })
  }
})
