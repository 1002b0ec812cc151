/**
 * Durability without stalling the event loop.
 *
 * The gateway's own connection runs WAL with synchronous=NORMAL and no automatic
 * checkpoints, so a commit only writes its frames to the -wal file. `sync()` then makes every
 * commit made before the call durable with one fdatasync of the -wal file, run on libuv's
 * thread pool: while the disk flushes (≈ 4 ms here), the event loop goes on parsing and
 * verifying the next messages. Calls that arrive while an fdatasync runs share the next one,
 * so the flush itself is group-committed.
 *
 * Checkpoints (copying the WAL into the database file, each with its own fsyncs) run on a
 * worker thread with its own connection (checkpoint-worker.ts), in PASSIVE mode, so they
 * never stall ingest either. SQLite syncs the WAL before a checkpoint copies it and the
 * database file before the WAL is reused, so a frame is always durable in one of the two.
 */
import { closeSync, fdatasync, fdatasyncSync, fstatSync, fsyncSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../common/log.js';
import { EdgegwError } from '../../common/errors.js';
import { compiledWorkerUrl } from '../../common/worker-url.js';
import { storeError } from './db.js';
import { NO_LATENCY, type LatencyRecorder } from '../latency.js';
import type { CheckpointReport, CheckpointWorkerData } from './checkpoint-worker.js';

/** The operating system calls used, replaceable only to inject faults in tests. */
export interface SyncCalls {
  fdatasync(fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void;
  fdatasyncSync(fd: number): void;
}

const OS_CALLS: SyncCalls = { fdatasync, fdatasyncSync };

export interface WalSync {
  /** Resolves once every commit made before the call is on disk; rejects with a store error. */
  sync(): Promise<void>;
  /** The same, blocking (shutdown). */
  syncNow(): void;
  close(): void;
}

export function createWalSync(dbPath: string, calls: SyncCalls = OS_CALLS, latency: LatencyRecorder = NO_LATENCY): WalSync {
  const walPath = `${dbPath}-wal`;
  let fd = openWal();
  // The -wal file's directory entry must survive a power cut too: flushed once, here.
  const dirFd = openSync(dirname(walPath), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  let current: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  let closed = false;

  function openWal(): number {
    try {
      return openSync(walPath, 'r');
    } catch (err) {
      throw storeError(err, `opening the write-ahead log ${walPath}`);
    }
  }

  /** SQLite keeps and reuses the -wal file while a connection is open; this makes sure. */
  function currentFd(): number {
    const st = statSync(walPath, { throwIfNoEntry: false });
    if (fd >= 0 && st !== undefined && st.ino === fstatSync(fd).ino) return fd;
    if (fd >= 0) closeSync(fd);
    fd = -1;
    fd = openWal();
    return fd;
  }

  function begin(): Promise<void> {
    const p: Promise<void> = new Promise<void>((resolve, reject) => {
      let handle: number;
      try {
        if (closed) throw new EdgegwError('EDGEGW_STORE_IO', 'the store is closed');
        handle = currentFd();
      } catch (err) {
        reject(err instanceof EdgegwError ? err : storeError(err, 'flushing the write-ahead log'));
        return;
      }
      const started = performance.now();
      calls.fdatasync(handle, (err) => {
        if (!err) latency.record('fsync', performance.now() - started);
        if (current === p) current = undefined;
        if (err) reject(storeError(err, 'flushing the write-ahead log (fdatasync)'));
        else resolve();
      });
    });
    current = p;
    return p;
  }

  return {
    sync() {
      if (queued !== undefined) return queued;
      if (current === undefined) return begin();
      // The flush in progress may have started before this caller's commit: queue one more.
      const q = current.then(
        () => undefined,
        () => undefined,
      ).then(() => {
        queued = undefined;
        return begin();
      });
      queued = q;
      return q;
    },
    syncNow() {
      try {
        calls.fdatasyncSync(currentFd());
      } catch (err) {
        throw err instanceof EdgegwError ? err : storeError(err, 'flushing the write-ahead log (fdatasync)');
      }
    },
    close() {
      closed = true;
      // An fdatasync still running on the thread pool keeps its descriptor until it ends.
      const last = queued ?? current;
      const release = (): void => {
        if (fd >= 0) closeSync(fd);
        fd = -1;
      };
      if (last === undefined) release();
      else void last.then(release, release);
    },
  };
}

export interface Checkpointer {
  /** Runs one checkpoint now and resolves with its report. */
  checkpointNow(): Promise<CheckpointReport>;
  stop(): Promise<void>;
}

function checkpointWorkerUrl(): URL {
  return compiledWorkerUrl(
    new URL('./checkpoint-worker.js', import.meta.url),
    new URL('../../dist/gateway/store/checkpoint-worker.js', import.meta.url),
  );
}

/**
 * Starts the checkpoint worker for `dbPath`. It checkpoints every `intervalMs`; a worker
 * that dies is replaced after a pause, and errors (a full disk) are logged once per kind.
 */
export function startCheckpointer(deps: { log: Logger }, dbPath: string, intervalMs: number): Checkpointer {
  const log = deps.log.child({ part: 'checkpoint' });
  let worker: Worker | undefined;
  let stopped = false;
  let lastErrorCode: string | undefined;
  let waiters: ((r: CheckpointReport) => void)[] = [];
  let restartTimer: NodeJS.Timeout | undefined;

  function spawn(): void {
    const data: CheckpointWorkerData = { dbPath, intervalMs };
    const w = new Worker(checkpointWorkerUrl(), { execArgv: [], workerData: data });
    w.unref();
    w.on('message', (r: CheckpointReport) => {
      if (r.error !== undefined && r.error.code !== lastErrorCode) {
        log.warn({ code: r.error.code, err: r.error.message }, 'checkpoint failed; the write-ahead log keeps the data and grows until it succeeds');
      } else if (r.error === undefined && lastErrorCode !== undefined) {
        log.info('checkpoints succeed again');
      }
      lastErrorCode = r.error?.code;
      const ws = waiters;
      waiters = [];
      for (const resolve of ws) resolve(r);
    });
    w.on('error', (err) => log.error({ err }, 'checkpoint worker failed'));
    w.on('exit', (code) => {
      if (worker === w) worker = undefined;
      if (stopped) return;
      log.error({ code }, 'checkpoint worker exited; restarting it');
      restartTimer = setTimeout(spawn, 1000);
      restartTimer.unref();
    });
    worker = w;
  }

  spawn();
  return {
    checkpointNow() {
      return new Promise<CheckpointReport>((resolve, reject) => {
        if (worker === undefined) {
          reject(new EdgegwError('EDGEGW_INTERNAL', 'the checkpoint worker is not running'));
          return;
        }
        waiters.push(resolve);
        worker.postMessage('now');
      });
    },
    async stop() {
      stopped = true;
      if (restartTimer) clearTimeout(restartTimer);
      const w = worker;
      if (w === undefined) return;
      await new Promise<void>((resolve) => {
        w.once('exit', () => resolve());
        w.postMessage('stop');
      });
    },
  };
}
