#!/usr/bin/env node
// Runs the compiled agent (dist/, built by `npm ci`/`npm run build`); from a source checkout without
// a build, falls back to running the TypeScript sources through tsx.
import { existsSync } from 'node:fs'

const dist = new URL('../dist/agent/cli/gatectl.js', import.meta.url)
if (existsSync(dist)) {
  await import(dist.href)
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import('../agent/cli/gatectl.ts')
}
