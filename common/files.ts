/**
 * Files that hold secrets: written atomically with mode 0600 (directories 0700), and
 * refused on read when group or others can read them.
 */
import { mkdirSync, openSync, writeSync, fsyncSync, closeSync, renameSync, statSync, readFileSync, chmodSync } from 'node:fs';
import { dirname } from 'node:path';
import { EdgegwError } from './errors.js';

export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Writes `data` to `path` atomically (temp file, fsync, rename) with the given mode. */
export function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o600): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** Reads a secret file, refusing it when its mode lets group or others read it. */
export function readSecretFile(path: string): Buffer {
  const st = statSync(path);
  if ((st.mode & 0o077) !== 0) {
    throw new EdgegwError(
      'EDGEGW_SECRET_FILE_MODE',
      `${path} has mode ${(st.mode & 0o777).toString(8)}; secrets must be 0600 (chmod 600 ${path})`,
    );
  }
  return readFileSync(path);
}
