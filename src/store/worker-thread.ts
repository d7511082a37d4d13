// Starts one of the store's worker threads from its module next to the
// caller: `new Worker(new URL("./x-worker.js", import.meta.url))`. In dist/
// that file is the compiled JavaScript. Under the test runner and `npm run
// dev` the sources are TypeScript run by tsx: there the worker first
// registers tsx's loader (a loader given as --import does not reach worker
// threads on Node 20), then imports the .ts file beside the missing .js.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker, type WorkerOptions } from "node:worker_threads";

export function startWorker(url: URL, options: WorkerOptions = {}): Worker {
  const file = fileURLToPath(url);
  if (existsSync(file) || !file.endsWith(".js")) return new Worker(url, options);
  const source = pathToFileURL(`${file.slice(0, -3)}.ts`).href;
  // The package's ESM entry of tsx/esm/api (require.resolve would give its CommonJS one).
  const tsx = pathToFileURL(path.join(path.dirname(createRequire(import.meta.url).resolve("tsx/package.json")), "dist", "esm", "api", "index.mjs")).href;
  const boot = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(source)}); })`;
  return new Worker(boot, { ...options, eval: true });
}
