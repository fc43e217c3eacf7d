import { Worker, type WorkerOptions } from 'node:worker_threads'

/**
 * Start a worker thread running the module `name` (no extension) that sits next to `callerUrl` (the
 * caller's import.meta.url). From a build (dist/, dist-bench/) that is the compiled .js, which Node
 * runs as it is. From the TypeScript sources (tsx under bin/launch.js, vitest) it is the .ts, and
 * the worker registers tsx before it imports it: a worker thread does not inherit the loader of the
 * thread that starts it, not even one given with --import.
 */
export function startModuleWorker(callerUrl: string, name: string, options: WorkerOptions = {}): Worker {
  if (!callerUrl.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, callerUrl), options)
  const entry = new URL(`./${name}.ts`, callerUrl).href
  const tsx = import.meta.resolve('tsx/esm/api')
  // the only JavaScript in a string: what loads the TypeScript module on the new thread
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}) })`
  return new Worker(boot, { ...options, eval: true })
}
