/**
 * The gateway's durable state in one SQLite file: device registry, replay windows, the
 * outbox the relay drains, dead letters, the audit trail and counters.
 */
import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/log.js';
import { openDatabase, type Db } from './db.js';
import { createRegistry, type Registry } from './registry.js';
import { createIngestWriter, createCounters, type IngestWriter, type Counters } from './ingest.js';
import { createOutbox, type Outbox } from './outbox.js';
import type { ReplayState } from '../verify/replay.js';
import type { AuditEvent } from './types.js';
import { createWalSync, startCheckpointer, type Checkpointer, type CommitGate, type SyncCalls } from './durable.js';
import { NO_LATENCY, type LatencyRecorder } from '../latency.js';

export * from './types.js';
export type { Db } from './db.js';
export { openDatabase, storeError } from './db.js';
export type { Registry, DeviceRecord, KeyRecord, CertRecord, DeviceStatus, KeyStatus, KeyAlg } from './registry.js';
export { createRegistry } from './registry.js';
export type { IngestWriter, Counters } from './ingest.js';
export type { Outbox, DeadLetterInfo } from './outbox.js';

export interface StoreOptions {
  path: string;
  maxOutboxRows: number;
  maxOutboxBytes: number;
  maxBatchRows: number;
  /** How often the checkpoint worker copies the WAL into the database file. */
  checkpointIntervalMs?: number;
  /** Only for fault injection in tests: the fdatasync calls (durable.ts). */
  syncCalls?: SyncCalls;
  /** Only for tests: a checkpoint worker that misbehaves on purpose (durable.ts). */
  checkpointWorkerUrl?: URL;
}

export const DEFAULT_STORE_LIMITS = Object.freeze({
  maxOutboxRows: 2_000_000,
  maxOutboxBytes: 1024 * 1024 * 1024,
  maxBatchRows: 2000,
});

export interface Store {
  readonly db: Db;
  readonly registry: Registry;
  readonly counters: Counters;
  readonly ingest: IngestWriter;
  readonly outbox: Outbox;
  replayState(deviceId: string): ReplayState;
  nextCommandSeq(deviceId: string): number;
  recentAudit(limit: number): (AuditEvent & { id: number })[];
  /** Deletes the oldest audit rows beyond `maxRows`; returns how many went. */
  pruneAudit(maxRows: number): number;
  /** Writes runtime rows for `edgegw status`, all in one transaction. */
  setRuntime(values: Readonly<Record<string, string>>): void;
  /** True when another connection changed the database since the last call. */
  changedExternally(): boolean;
  /** Resolves once every commit made so far is on disk (before a command names it). */
  sync(): Promise<void>;
  readonly checkpointer: Checkpointer;
  /**
   * Commits and flushes what is queued, then closes, before it returns. The promise resolves
   * once the checkpoint worker has closed its own connection too (SQLite then deletes the -wal
   * and -shm files): await it before removing the directory. A second call returns the same.
   */
  close(): Promise<void>;
}

export function createStore(deps: { clock: Clock; log: Logger; latency?: LatencyRecorder }, options: StoreOptions): Store {
  const latency = deps.latency ?? NO_LATENCY;
  const db = openDatabase(options.path, { walSync: true });
  const counters = createCounters(db);
  const registry = createRegistry({ db, clock: deps.clock });
  const outbox = createOutbox({ db, counters });
  outbox.recount();
  // The -wal file exists now (the recount wrote to it); flushes of it make commits durable.
  const wal = createWalSync(options.path, options.syncCalls, latency);
  const ingest = createIngestWriter({ db, counters, wal, latency, log: deps.log }, options);
  const totalChanges = db.prepare<[], number>('SELECT total_changes()').pluck();
  // A catch-up holds every writer that writes steadily: ingest commits and relay deletions.
  const gate: CommitGate = {
    pause() {
      const commits = ingest.pause();
      const deletions = outbox.pause();
      return () => {
        commits();
        deletions();
      };
    },
    writes: () => totalChanges.get()!,
  };
  const checkpointer = startCheckpointer({ log: deps.log, gate }, options.path, {
    intervalMs: options.checkpointIntervalMs ?? 1000,
    ...(options.checkpointWorkerUrl ? { workerUrl: options.checkpointWorkerUrl } : {}),
  });

  const cmdSeq = db.prepare<[string], { seq: number }>(
    'INSERT INTO command_seq (device_id, seq) VALUES (?, 1) ON CONFLICT(device_id) DO UPDATE SET seq = seq + 1 RETURNING seq',
  );
  const auditSelect = db.prepare<[number], { id: number; ts_ms: number; kind: string; code: string | null; device_id: string | null; address: string | null; detail: string | null }>(
    'SELECT * FROM audit ORDER BY id DESC LIMIT ?',
  );
  const auditPrune = db.prepare('DELETE FROM audit WHERE id <= (SELECT max(id) FROM audit) - ?');
  const runtimeUpsert = db.prepare('INSERT INTO runtime (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  const runtimeWrite = db.transaction((values: Readonly<Record<string, string>>) => {
    for (const [key, value] of Object.entries(values)) runtimeUpsert.run(key, value);
  });
  let dataVersion = db.pragma('data_version', { simple: true }) as number;
  let closed: Promise<void> | undefined;

  return {
    db,
    registry,
    counters,
    ingest,
    outbox,
    replayState(deviceId) {
      return ingest.committedReplay(deviceId);
    },
    nextCommandSeq(deviceId) {
      return cmdSeq.get(deviceId)!.seq;
    },
    recentAudit(limit) {
      return auditSelect.all(limit).map((r) => ({
        id: r.id,
        tsMs: r.ts_ms,
        kind: r.kind,
        ...(r.code === null ? {} : { code: r.code }),
        ...(r.device_id === null ? {} : { deviceId: r.device_id }),
        ...(r.address === null ? {} : { address: r.address }),
        ...(r.detail === null ? {} : { detail: r.detail }),
      }));
    },
    pruneAudit(maxRows) {
      return auditPrune.run(maxRows).changes;
    },
    setRuntime(values) {
      runtimeWrite(values);
    },
    changedExternally() {
      const v = db.pragma('data_version', { simple: true }) as number;
      const changed = v !== dataVersion;
      dataVersion = v;
      return changed;
    },
    sync() {
      return wal.sync();
    },
    checkpointer,
    close() {
      if (closed !== undefined) return closed;
      closed = checkpointer.stop();
      try {
        ingest.flushNow();
      } finally {
        wal.close();
        db.close();
      }
      return closed;
    },
  };
}

/** Read-only view for `edgegw status` while the gateway runs (WAL allows it). */
export function readStatus(path: string): {
  counters: Record<string, number>;
  runtime: Record<string, string>;
  deadLetters: number;
} {
  const db = openDatabase(path, { readonly: true });
  try {
    const counters = Object.fromEntries(
      db.prepare<[], { name: string; value: number }>('SELECT name, value FROM counters').all().map((r) => [r.name, r.value]),
    );
    const runtime = Object.fromEntries(
      db.prepare<[], { key: string; value: string }>('SELECT key, value FROM runtime').all().map((r) => [r.key, r.value]),
    );
    const deadLetters = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM dead_letters').get()!.n;
    return { counters, runtime, deadLetters };
  } finally {
    db.close();
  }
}
