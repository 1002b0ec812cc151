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
import type { CheckpointReport, CheckpointRequest, CheckpointWorkerData } from './checkpoint-worker.js';

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
  /** How often writes were held for a catch-up, and how many reached the end of the log. */
  stats(): CheckpointStats;
  stop(): Promise<void>;
}

export interface CheckpointStats {
  /** Catch-ups started: one after each periodic checkpoint of a log written to since the last. */
  catchUps: number;
  /** Catch-ups that reached it: the next write starts the log again from its beginning. */
  caughtUp: number;
  /** Catch-ups whose writes were let go after `maxPauseMs`, before the worker answered. */
  timedOut: number;
}

/**
 * Holds the gateway's writes for a moment: `pause()` returns the function that lets them go
 * (idempotent). Commits asked for meanwhile wait in the ingest writer's queue, the relay's
 * deletions wait for the release; the event loop does not.
 */
export interface CommitGate {
  pause(): () => void;
  /**
   * Rows changed on the gateway's connection so far, by any writer (SQLite's total_changes()):
   * a log that nothing was written to since it caught up is left be.
   */
  writes(): number;
}

export interface CheckpointerOptions {
  intervalMs: number;
  /** With a gate: the longest writes are held for one catch-up (default 50 ms). */
  maxPauseMs?: number;
  /** The worker module (default: checkpoint-worker.js). Only for tests, as SyncCalls are. */
  workerUrl?: URL;
}

/** How long stop() waits for the checkpoint worker to close its connection and end, ms. */
export const CHECKPOINT_STOP_TIMEOUT_MS = 5000;

/** The longest writes are held while the checkpoint catches up, ms. */
export const DEFAULT_MAX_CATCH_UP_PAUSE_MS = 50;

function checkpointWorkerUrl(): URL {
  return compiledWorkerUrl(
    new URL('./checkpoint-worker.js', import.meta.url),
    new URL('../../dist/gateway/store/checkpoint-worker.js', import.meta.url),
  );
}

/**
 * Starts the checkpoint worker for `dbPath`. It checkpoints every `intervalMs`; a worker
 * that dies is replaced after a pause, and errors (a full disk) are logged once per kind.
 *
 * Why a gate: SQLite writes the log from its beginning again only when a transaction starts
 * while every frame in it is already in the database file. Under a steady stream of commits
 * that moment never comes, since frames are appended while each PASSIVE checkpoint runs, and
 * the -wal file then grows without bound (measured: 210 MB after 50 s at 1,000 messages/s,
 * 5 MB/s at 7,500/s; 43.9 MiB in 14 s of the relay's deletions alone; docs/performance.md).
 * So after each periodic checkpoint of a log that is not empty and was written to since it
 * last caught up, the gateway's writes (ingest commits, relay deletions) are held (`gate`)
 * while a second checkpoint copies the few frames written during the first, for at most
 * `maxPauseMs`; the next write then restarts the log. Nothing blocks: the event loop goes
 * on, held messages go into the next commit, and held deletions follow the release.
 */
export function startCheckpointer(deps: { log: Logger; gate?: CommitGate }, dbPath: string, options: CheckpointerOptions): Checkpointer {
  const log = deps.log.child({ part: 'checkpoint' });
  const maxPauseMs = options.maxPauseMs ?? DEFAULT_MAX_CATCH_UP_PAUSE_MS;
  let worker: Worker | undefined;
  let stopped = false;
  let lastErrorCode: string | undefined;
  let waiters: ((r: CheckpointReport) => void)[] = [];
  let restartTimer: NodeJS.Timeout | undefined;
  const stats: CheckpointStats = { catchUps: 0, caughtUp: 0, timedOut: 0 };
  /** The catch-up in progress: its release of the writes, and the timer that bounds it. */
  let held: { release: () => void; timer: NodeJS.Timeout } | undefined;
  /**
   * Catch-ups asked of the worker and not yet answered. One that timed out may still be
   * answered after the next has begun; only the last answer ends the hold of the last one.
   */
  let unanswered = 0;
  /** The gate's write count when a catch-up last reached the log's end. */
  let writesWhenCaughtUp = -1;

  function letCommitsGo(): void {
    if (held === undefined) return;
    clearTimeout(held.timer);
    held.release();
    held = undefined;
  }

  function catchUp(w: Worker): void {
    if (deps.gate === undefined || held !== undefined || stopped) return;
    stats.catchUps++;
    const release = deps.gate.pause();
    held = {
      release,
      timer: setTimeout(() => {
        stats.timedOut++;
        letCommitsGo();
      }, maxPauseMs),
    };
    unanswered++;
    w.postMessage('catch-up' satisfies CheckpointRequest);
  }

  function onReport(w: Worker, r: CheckpointReport): void {
    if (r.error !== undefined && r.error.code !== lastErrorCode) {
      log.warn({ code: r.error.code, err: r.error.message }, 'checkpoint failed; the write-ahead log keeps the data and grows until it succeeds');
    } else if (r.error === undefined && lastErrorCode !== undefined) {
      log.info('checkpoints succeed again');
    }
    lastErrorCode = r.error?.code;
    if (r.reason === 'catch-up') {
      unanswered = Math.max(0, unanswered - 1);
      if (unanswered === 0) {
        if (held !== undefined && r.error === undefined && r.checkpointed === r.walFrames) {
          stats.caughtUp++;
          // Writes are held: nothing can have been written since the checkpoint ran.
          writesWhenCaughtUp = deps.gate!.writes();
        }
        letCommitsGo();
      }
    } else if (!stopped && r.reason === 'timer' && r.error === undefined && r.walFrames > 0 && deps.gate?.writes() !== writesWhenCaughtUp) {
      // (Stopped: the store's connection may be closed already, and a report posted before the
      // worker saw 'stop' still arrives.)
      // The report cannot tell whether writes came in while it ran: its frame count is the
      // log's end as of its start. Whatever it copied, the catch-up copies the rest. A store
      // with nothing written since the last catch-up is left alone.
      catchUp(w);
    }
    const ws = waiters;
    waiters = [];
    for (const resolve of ws) resolve(r);
  }

  function spawn(): void {
    const data: CheckpointWorkerData = { dbPath, intervalMs: options.intervalMs };
    const w = new Worker(options.workerUrl ?? checkpointWorkerUrl(), { execArgv: [], workerData: data });
    w.unref();
    w.on('message', (r: CheckpointReport) => onReport(w, r));
    w.on('error', (err) => log.error({ err }, 'checkpoint worker failed'));
    w.on('exit', (code) => {
      if (worker === w) worker = undefined;
      unanswered = 0;
      letCommitsGo();
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
        worker.postMessage('now' satisfies CheckpointRequest);
      });
    },
    stats: () => ({ ...stats }),
    async stop() {
      stopped = true;
      letCommitsGo();
      if (restartTimer) clearTimeout(restartTimer);
      const w = worker;
      if (w === undefined) return;
      await new Promise<void>((resolve) => {
        // A worker that does not end (a bug, a hung disk) must not keep the gateway from stopping.
        const timer = setTimeout(() => {
          log.error({ timeoutMs: CHECKPOINT_STOP_TIMEOUT_MS }, 'checkpoint worker did not stop; terminating it');
          void w.terminate();
        }, CHECKPOINT_STOP_TIMEOUT_MS);
        w.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        // Unref'd while it runs, so that it never keeps a process alive; a caller waiting for
        // its end must keep the event loop going until then.
        w.ref();
        w.postMessage('stop' satisfies CheckpointRequest);
      });
    },
  };
}
