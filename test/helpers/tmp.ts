// Temporary directories for tests, removed in the test's teardown.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

export function tempDir(t: Teardown, prefix = 'edgegw-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // A store's checkpoint worker may still be closing its connection (SQLite then deletes the
  // -wal and -shm files) while the directory is removed: retried rather than ENOTEMPTY.
  t.teardown(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));
  return dir;
}

/**
 * A real, tiny filesystem for disk-full tests: a tmpfs of `size` mounted on a new temporary
 * directory (root is needed; CI runs as root). `dir` is undefined when it cannot be mounted,
 * and `skip` then holds the reason for tap's skip option. `grow` remounts it larger.
 */
export function tinyTmpfs(t: Teardown, size: string, prefix = 'edgegw-full-'): { dir: string | undefined; skip: false | string; grow(size: string): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let mounted = false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    mounted = true;
  } catch {
    // not root, or no mount permission
  }
  t.teardown(() => {
    if (mounted) execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir: mounted ? dir : undefined,
    skip: mounted ? false : 'cannot mount a tmpfs here (needs root)',
    grow(newSize) {
      execFileSync('mount', ['-o', `remount,size=${newSize}`, dir]);
    },
  };
}
