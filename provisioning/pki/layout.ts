/**
 * Where the PKI keeps its files, and how the directory comes into being: the first start
 * builds the whole set in a private temporary directory beside the target and renames it into
 * place, so a reader sees either no PKI or a complete one, and of two processes starting at
 * once exactly one rename wins (rename(2) fails with ENOTEMPTY onto a non-empty directory).
 */
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export interface PkiPaths {
  dir: string;
  rootCaCert: string;
  rootCaKey: string;
  issuingCaCert: string;
  issuingCaKey: string;
  serverCert: string;
  serverKey: string;
}

export function pkiPaths(dir: string): PkiPaths {
  const d = resolve(dir);
  return {
    dir: d,
    rootCaCert: join(d, 'root-ca.crt'),
    rootCaKey: join(d, 'root-ca.key'),
    issuingCaCert: join(d, 'issuing-ca.crt'),
    issuingCaKey: join(d, 'issuing-ca.key'),
    serverCert: join(d, 'server.crt'),
    serverKey: join(d, 'server.key'),
  };
}

/** Modes: keys are secrets; certificates are public, the 0700 directory already hides them. */
export const KEY_FILE_MODE = 0o600;
export const CERT_FILE_MODE = 0o644;

/** Makes a rename or a new file in `dir` durable across a power cut. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates `dir` by letting `populate` fill a fresh 0700 temporary directory beside it, then
 * renaming that into place. Returns false when another process created `dir` first (ours is
 * then discarded). An existing empty `dir` is replaced; a non-empty one is never touched.
 */
export async function createDirAtomically(dir: string, populate: (tmp: string) => Promise<void>): Promise<boolean> {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  // mkdtemp creates the directory with mode 0700.
  const tmp = mkdtempSync(join(parent, `.${basename(dir)}.init-`));
  try {
    await populate(tmp);
    fsyncDir(tmp);
    try {
      renameSync(tmp, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
      throw err;
    }
    fsyncDir(parent);
    return true;
  } finally {
    // After a successful rename `tmp` no longer exists and this does nothing.
    rmSync(tmp, { recursive: true, force: true });
  }
}
