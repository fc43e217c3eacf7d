// Shared by the bin/ programs. In a development checkout (tsx installed) this runs the TypeScript
// sources, so nothing stale can run; on a gate or a server, where `npm prune --omit=dev` removed
// tsx, it runs the compiled dist/.
import { existsSync } from 'node:fs'

/** Run the program whose source is `<repo>/<entry>.ts` (compiled to `<repo>/dist/<entry>.js`). */
export async function launch(entry) {
  const source = new URL(`../${entry}.ts`, import.meta.url)
  const dist = new URL(`../dist/${entry}.js`, import.meta.url)
  let tsx = null
  if (existsSync(source)) {
    try {
      tsx = await import('tsx/esm/api')
    } catch {
      // production install: no dev dependencies
    }
  }
  if (tsx || !existsSync(dist)) {
    if (!tsx) throw new Error('neither tsx (npm ci) nor a build (npm run build) is available')
    tsx.register()
    await import(source.href)
  } else {
    await import(dist.href)
  }
}
