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

export interface CheckpointReport {
  atMs: number;
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

  function checkpoint(): CheckpointReport {
    try {
      const row = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      const r = row[0]!;
      return { atMs: Date.now(), walFrames: r.log, checkpointed: r.checkpointed };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return { atMs: Date.now(), walFrames: -1, checkpointed: -1, error: { code: e.code ?? 'UNKNOWN', message: e.message ?? String(err) } };
    }
  }

  function tick(): void {
    port.postMessage(checkpoint());
    timer = setTimeout(tick, data.intervalMs);
  }

  port.on('message', (m: 'now' | 'stop') => {
    if (m === 'stop') {
      if (timer) clearTimeout(timer);
      db.close();
      port.close();
      return;
    }
    port.postMessage(checkpoint());
  });
  timer = setTimeout(tick, data.intervalMs);
}

if (parentPort) run(workerData as CheckpointWorkerData);
