/**
 * Group commit for the ingest path. Every accepted message, counter change and audit event
 * that arrives before the next turn of the event loop goes into one transaction; the
 * transaction's messages are answered once an fdatasync of the write-ahead log that started
 * after the commit has finished (durable.ts), so a PUBACK costs a share of one flush rather than
 * one flush each, and the event loop keeps working while the disk flushes.
 */
import type { Db } from './db.js';
import { storeError } from './db.js';
import type { AcceptedMessage, AuditEvent, OutboxUsage } from './types.js';
import { acceptSeq, bitmapFromBytes, bitmapToBytes, EMPTY_REPLAY_STATE, type ReplayState } from '../verify/replay.js';
import { EdgegwError } from '../../common/errors.js';
import type { WalSync } from './durable.js';
import type { LatencyRecorder } from '../latency.js';
import type { Logger } from '../../common/log.js';
import { callSafely } from '../../common/callbacks.js';
import { createHold } from './hold.js';
import { lastOutboxId, OUTBOX_LAST_ID } from './outbox.js';

/** Called once: with no argument when the message is durable, else with a store error. */
export type CommitCallback = (err?: EdgegwError) => void;

interface Pending {
  readonly msg: AcceptedMessage;
  /** performance.now() when queued. */
  readonly queuedAt: number;
  readonly done: CommitCallback;
}

export interface IngestWriterOptions {
  maxOutboxRows: number;
  maxOutboxBytes: number;
  /** Largest number of messages in one transaction. */
  maxBatchRows: number;
}

export type IngestWriter = ReturnType<typeof createIngestWriter>;

export function createIngestWriter(deps: { db: Db; counters: Counters; wal: WalSync; latency: LatencyRecorder; log: Logger }, options: IngestWriterOptions) {
  const { db, counters, wal, latency } = deps;
  const log = deps.log.child({ part: 'group-commit' });
  /** Answers one caller: no error means durable. */
  const answer = (p: Pending, err?: EdgegwError): void => callSafely(log, 'a commit callback', p.done, err, undefined);
  const insertOutbox = db.prepare(
    'INSERT INTO outbox (id, device_id, kid, seq, ts, rx_ms, topic, cose) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  /** The last outbox id given out: ids never repeat (outbox.ts lastOutboxId). */
  let lastId = lastOutboxId(db, counters);
  const upsertReplay = db.prepare(
    'INSERT INTO replay (device_id, high, bitmap) VALUES (?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET high = excluded.high, bitmap = excluded.bitmap',
  );
  const insertAudit = db.prepare(
    'INSERT INTO audit (ts_ms, kind, code, device_id, address, detail) VALUES (?, ?, ?, ?, ?, ?)',
  );

  const selectReplay = db.prepare<[string], { high: number; bitmap: Buffer }>('SELECT high, bitmap FROM replay WHERE device_id = ?');
  /** The committed replay windows: what the database holds, never an optimistic guess. */
  const committedReplay = new Map<string, ReplayState>();
  function committedWindow(deviceId: string): ReplayState {
    let s = committedReplay.get(deviceId);
    if (s === undefined) {
      const row = selectReplay.get(deviceId);
      s = row ? { high: row.high, bitmap: bitmapFromBytes(row.bitmap) } : EMPTY_REPLAY_STATE;
      committedReplay.set(deviceId, s);
    }
    return s;
  }

  let queue: Pending[] = [];
  let audits: AuditEvent[] = [];
  let scheduled = false;
  let pendingBytes = 0;
  let lastError: EdgegwError | undefined;
  /** Committed batches waiting for their flush to disk. */
  const unsynced = new Set<Pending[]>();
  let syncing = false;
  /** Holds on commits (pause(): the checkpointer's catch-up, durable.ts). */
  const hold = createHold(() => {
    if (hasWork()) schedule();
  });

  const commit = db.transaction((batch: Pending[], events: AuditEvent[]) => {
    let bytes = 0;
    // The replay window written is the committed one plus this batch's seqs, so a batch
    // that fails can never leave a seq marked as seen that was not stored.
    const windows = new Map<string, ReplayState>();
    for (const p of batch) {
      const m = p.msg;
      insertOutbox.run(++lastId, m.deviceId, m.kid, m.seq, m.ts, m.rxMs, m.topic, m.cose);
      bytes += m.cose.length;
      windows.set(m.deviceId, acceptSeq(windows.get(m.deviceId) ?? committedWindow(m.deviceId), m.seq));
    }
    for (const [deviceId, w] of windows) upsertReplay.run(deviceId, w.high, bitmapToBytes(w.bitmap));
    for (const e of events) {
      insertAudit.run(e.tsMs, e.kind, e.code ?? null, e.deviceId ?? null, e.address ?? null, e.detail ?? null);
    }
    counters.add('accepted', batch.length);
    counters.add('outbox_rows', batch.length);
    counters.add('outbox_bytes', bytes);
    // In the counters' page, which this commit writes anyway: no sequence page of its own. A
    // failed commit leaves a gap in the ids, never a repeat. (A commit of audit events alone
    // gives out no id.)
    if (batch.length > 0) counters.set(OUTBOX_LAST_ID, lastId);
    counters.persistDirty();
    return windows;
  });

  /**
   * Commits what is queued and starts the flush to disk that makes it durable. While a flush
   * runs, nothing is committed: what arrives meanwhile could not be acknowledged before the
   * next flush anyway, so it waits and goes into one transaction when the flush ends.
   * While commits are paused, nothing is committed either. `force` commits regardless
   * (shutdown).
   */
  function flush(force = false): void {
    scheduled = false;
    if ((syncing || hold.held()) && !force) return;
    if (!hasWork()) return;
    const batch = queue.length > options.maxBatchRows ? queue.splice(0, options.maxBatchRows) : queue;
    if (batch === queue) queue = [];
    const events = audits;
    audits = [];
    let batchBytes = 0;
    for (const p of batch) batchBytes += p.msg.cose.length;
    const snapshot = counters.snapshot();
    try {
      const windows = commit.immediate(batch, events);
      for (const [deviceId, w] of windows) committedReplay.set(deviceId, w);
      lastError = undefined;
    } catch (err) {
      counters.restore(snapshot);
      const e = storeError(err, 'commit of accepted messages');
      lastError = e;
      pendingBytes -= batchBytes;
      for (const p of batch) answer(p, e);
      // Counter and audit changes are kept for the next attempt; they are not acknowledgements.
      audits = events.concat(audits);
      if (queue.length > 0) schedule();
      return;
    }
    pendingBytes -= batchBytes;
    if (queue.length > 0) schedule();
    if (batch.length === 0) return;
    unsynced.add(batch);
    syncing = true;
    wal.sync().then(
      () => {
        syncing = false;
        if (unsynced.delete(batch)) {
          const durableAt = performance.now();
          for (const p of batch) {
            latency.record('store', durableAt - p.queuedAt);
            answer(p);
          }
        }
        if (hasWork()) schedule();
      },
      (err: EdgegwError) => {
        syncing = false;
        if (hasWork()) schedule();
        if (!unsynced.delete(batch)) return;
        // Committed but perhaps not on disk: not acknowledged, so the devices send them
        // again (a second copy is possible; the cloud deduplicates by dev, kid, seq).
        lastError = err;
        for (const p of batch) answer(p, err);
      },
    );
  }

  /** Messages, audit events or counter changes waiting for a commit. */
  function hasWork(): boolean {
    return queue.length > 0 || audits.length > 0 || counters.dirty();
  }

  function enqueue(msg: AcceptedMessage, done: CommitCallback): void {
    queue.push({ msg, queuedAt: performance.now(), done });
    pendingBytes += msg.cose.length;
    schedule();
  }

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => flush());
  }

  return {
    /** Resolves once the message is durably committed; rejects with a store error code. */
    commit(msg: AcceptedMessage): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        enqueue(msg, (err) => (err ? reject(err) : resolve()));
      });
    },
    /** The same with a callback (the ingest path: no promise per message). */
    enqueue,
    /** Whether one more message of `bytes` fits within the outbox bounds. */
    hasRoom(bytes: number): boolean {
      return (
        counters.get('outbox_rows') + queue.length + 1 <= options.maxOutboxRows &&
        counters.get('outbox_bytes') + pendingBytes + bytes <= options.maxOutboxBytes
      );
    },
    usage(): OutboxUsage {
      return { rows: counters.get('outbox_rows') + queue.length, bytes: counters.get('outbox_bytes') + pendingBytes };
    },
    audit(event: AuditEvent): void {
      audits.push(event);
      schedule();
    },
    /** Counter changes are persisted with the next commit. */
    touch(): void {
      schedule();
    },
    /** The last commit's failure, cleared by the next successful commit. */
    lastError(): EdgegwError | undefined {
      return lastError;
    },
    /** The device's committed replay window (the database's view). */
    committedReplay(deviceId: string): ReplayState {
      return committedWindow(deviceId);
    },
    /**
     * Holds commits until the returned function is called (durable.ts CommitGate): what
     * arrives meanwhile waits in the queue and goes into the first commit after.
     */
    pause: hold.pause,
    /** Commits everything queued and flushes it to disk, blocking (shutdown). */
    flushNow(): void {
      while (hasWork()) {
        const before = queue.length + audits.length;
        flush(true);
        if (lastError && queue.length + audits.length >= before) break;
      }
      wal.syncNow();
      for (const batch of unsynced) for (const p of batch) answer(p);
      unsynced.clear();
    },
  };
}

/** Named integer counters, mirrored in memory and persisted in the `counters` table. */
export type Counters = ReturnType<typeof createCounters>;

export function createCounters(db: Db) {
  const values = new Map<string, number>();
  const dirtyNames = new Set<string>();
  for (const row of db.prepare<[], { name: string; value: number }>('SELECT name, value FROM counters').all()) {
    values.set(row.name, row.value);
  }
  const upsert = db.prepare(
    'INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value',
  );
  return {
    get(name: string): number {
      return values.get(name) ?? 0;
    },
    add(name: string, n = 1): void {
      if (n === 0) return;
      values.set(name, (values.get(name) ?? 0) + n);
      dirtyNames.add(name);
    },
    set(name: string, v: number): void {
      values.set(name, v);
      dirtyNames.add(name);
    },
    dirty(): boolean {
      return dirtyNames.size > 0;
    },
    /** Writes changed counters; call inside a transaction. */
    persistDirty(): void {
      for (const name of dirtyNames) upsert.run(name, values.get(name) ?? 0);
      dirtyNames.clear();
    },
    snapshot(): { values: Map<string, number>; dirty: Set<string> } {
      return { values: new Map(values), dirty: new Set(dirtyNames) };
    },
    restore(s: { values: Map<string, number>; dirty: Set<string> }): void {
      values.clear();
      for (const [k, v] of s.values) values.set(k, v);
      dirtyNames.clear();
      for (const k of s.dirty) dirtyNames.add(k);
    },
    all(): Record<string, number> {
      return Object.fromEntries(values);
    },
  };
}
