/**
 * The checkpoint worker (see durable.ts): its own connection to the gateway's database,
 * a PASSIVE checkpoint every `intervalMs` and on request, a report after each. PASSIVE never
 * waits for or blocks the writer; synchronous=FULL on this connection makes SQLite sync the
 * WAL before copying it and the database file before the WAL may be reused.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export interface CheckpointWorkerData {
  dbPath: string;
  intervalMs: number;
}

/**
 * What the main thread asks for: a checkpoint now ('now'), or one while it holds its commits
 * so that the checkpoint can reach the end of the log ('catch-up'); or the end ('stop').
 */
export type CheckpointRequest = 'now' | 'catch-up' | 'stop';

export interface CheckpointReport {
  atMs: number;
  /** What started it: this worker's timer, a request, or a catch-up request. */
  reason: 'timer' | 'now' | 'catch-up';
  /** Frames in the WAL, and how many of them are now in the database file. */
  walFrames: number;
  checkpointed: number;
  error?: { code: string; message: string };
}

function run(data: CheckpointWorkerData): void {
  const port = parentPort!;
  const db = new Database(data.dbPath, { fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  db.pragma('synchronous = FULL');
  let timer: NodeJS.Timeout | undefined;

  function checkpoint(reason: CheckpointReport['reason']): CheckpointReport {
    try {
      const row = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      const r = row[0]!;
      return { atMs: Date.now(), reason, walFrames: r.log, checkpointed: r.checkpointed };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return { atMs: Date.now(), reason, walFrames: -1, checkpointed: -1, error: { code: e.code ?? 'UNKNOWN', message: e.message ?? String(err) } };
    }
  }

  function tick(): void {
    port.postMessage(checkpoint('timer'));
    timer = setTimeout(tick, data.intervalMs);
  }

  port.on('message', (m: CheckpointRequest) => {
    if (m === 'stop') {
      if (timer) clearTimeout(timer);
      db.close();
      port.close();
      return;
    }
    port.postMessage(checkpoint(m));
  });
  timer = setTimeout(tick, data.intervalMs);
}

if (parentPort) run(workerData as CheckpointWorkerData);
