/**
 * Where a worker thread's compiled module is. Compiled: beside the module that starts it.
 * When that module runs from source (the test runner's TypeScript loader), the compiled
 * copy in dist/ is used; `npm test` builds it first.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EdgegwError } from './errors.js';

/**
 * `beside`: the worker's URL next to the caller (new URL('./w.js', import.meta.url));
 * `inDist`: the same file under dist/, relative to the caller.
 */
export function compiledWorkerUrl(beside: URL, inDist: URL): URL {
  if (existsSync(fileURLToPath(beside))) return beside;
  if (existsSync(fileURLToPath(inDist))) return inDist;
  throw new EdgegwError('EDGEGW_INTERNAL', `worker module ${fileURLToPath(beside)} is not built: run npm run build`);
}
