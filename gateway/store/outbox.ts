/**
 * The relay's side of the outbox: read batches in arrival order, delete what the cloud
 * accepted, move what it refused for good to the dead-letter table. Row and byte totals
 * are kept in the counters in the same transactions, so `edgegw status` reads them cheaply.
 */
import type { Db } from './db.js';
import { storeError } from './db.js';
import type { Counters } from './ingest.js';
import type { OutboxRecord } from './types.js';
import { createHold } from './hold.js';

interface OutboxRow {
  id: number;
  device_id: string;
  kid: Buffer;
  seq: number;
  ts: number;
  rx_ms: number;
  topic: string;
  cose: Buffer;
}

const toRecord = (r: OutboxRow): OutboxRecord => ({
  id: r.id,
  deviceId: r.device_id,
  kid: new Uint8Array(r.kid.buffer, r.kid.byteOffset, r.kid.length),
  seq: r.seq,
  ts: r.ts,
  rxMs: r.rx_ms,
  topic: r.topic,
  cose: new Uint8Array(r.cose.buffer, r.cose.byteOffset, r.cose.length),
});

/** The counter that holds the last outbox id given out. */
export const OUTBOX_LAST_ID = 'outbox_last_id';

/**
 * The last outbox id ever given out. Ids must never repeat, even once the outbox was emptied
 * and the gateway restarted: the relay's cursor and the §8 batch id (wire.ts, the cloud's
 * Idempotency-Key) are made of them, and a batch id seen before is dropped by the cloud as a
 * duplicate. A database created before this rule has an AUTOINCREMENT outbox (its
 * sqlite_sequence row); a new one keeps the last id in the counters instead, which every
 * commit of a message writes anyway, so a one-message commit dirties three pages, not four
 * (docs/performance.md). The largest of the three sources counts.
 */
export function lastOutboxId(db: Db, counters: Counters): number {
  const inTable = db.prepare<[], { id: number | null }>('SELECT max(id) AS id FROM outbox').get()!.id ?? 0;
  const hasSequence = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").get() !== undefined;
  const sequence = hasSequence
    ? (db.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get()?.seq ?? 0)
    : 0;
  return Math.max(inTable, sequence, counters.get(OUTBOX_LAST_ID));
}

export interface DeadLetterInfo {
  batchId: string;
  status: number | null;
  reason: string;
  nowMs: number;
}

export type Outbox = ReturnType<typeof createOutbox>;

export function createOutbox(deps: { db: Db; counters: Counters }) {
  const { db, counters } = deps;
  const st = {
    after: db.prepare<[number, number], OutboxRow>('SELECT * FROM outbox WHERE id > ? ORDER BY id LIMIT ?'),
    get: db.prepare<[number], OutboxRow>('SELECT * FROM outbox WHERE id = ?'),
    del: db.prepare('DELETE FROM outbox WHERE id = ?'),
    dead: db.prepare(
      `INSERT INTO dead_letters (batch_id, status, reason, created_ms, device_id, kid, seq, ts, rx_ms, topic, cose)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    deadCount: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM dead_letters'),
    deadList: db.prepare<[number], { id: number; batch_id: string; status: number | null; reason: string; created_ms: number; device_id: string; seq: number }>(
      'SELECT id, batch_id, status, reason, created_ms, device_id, seq FROM dead_letters ORDER BY id DESC LIMIT ?',
    ),
    totals: db.prepare<[], { rows: number; bytes: number | null }>('SELECT count(*) AS rows, sum(length(cose)) AS bytes FROM outbox'),
  };

  /** Holds on the relay's writes (pause(): the checkpointer's catch-up, durable.ts). */
  const hold = createHold();

  function removeRows(ids: readonly number[]): { rows: number; bytes: number } {
    let rows = 0;
    let bytes = 0;
    for (const id of ids) {
      const row = st.get.get(id);
      if (!row) continue;
      st.del.run(id);
      rows++;
      bytes += row.cose.length;
    }
    counters.add('outbox_rows', -rows);
    counters.add('outbox_bytes', -bytes);
    return { rows, bytes };
  }

  const ack = db.transaction((ids: readonly number[]) => {
    const { rows } = removeRows(ids);
    counters.add('relayed', rows);
    counters.persistDirty();
    return rows;
  });

  const deadLetter = db.transaction((records: readonly OutboxRecord[], info: DeadLetterInfo) => {
    for (const r of records) {
      st.dead.run(info.batchId, info.status, info.reason, info.nowMs, r.deviceId, r.kid, r.seq, r.ts, r.rxMs, r.topic, r.cose);
    }
    const { rows } = removeRows(records.map((r) => r.id));
    counters.add('dead_lettered', rows);
    counters.persistDirty();
    return rows;
  });

  return {
    /**
     * Holds the relay's deletions until the returned function is called: the relay awaits
     * `writable()` before `ack` or `deadLetter` (durable.ts CommitGate).
     */
    pause: hold.pause,
    /** Resolves once the relay may delete: at once unless a catch-up holds it (≤ 50 ms). */
    writable: hold.released,
    /**
     * Up to `maxRows` records after `afterId`, in arrival order, stopping before the one that
     * would take the batch past `maxBytes` (the first record is always included).
     */
    read(afterId: number, maxRows: number, maxBytes: number): OutboxRecord[] {
      const rows = st.after.all(afterId, maxRows);
      const out: OutboxRecord[] = [];
      let bytes = 0;
      for (const r of rows) {
        if (out.length > 0 && bytes + r.cose.length > maxBytes) break;
        bytes += r.cose.length;
        out.push(toRecord(r));
      }
      return out;
    },
    /**
     * Deletes records the cloud accepted; returns how many were still there. On the
     * gateway's connection this is not flushed to disk by itself (durable.ts): a deletion lost
     * to a power cut brings its records back into the outbox, they are sent again, and the
     * cloud deduplicates them (PROTOCOL.md §8).
     */
    ack(ids: readonly number[]): number {
      try {
        return ack.immediate(ids);
      } catch (err) {
        throw storeError(err, 'deleting relayed records');
      }
    },
    deadLetter(records: readonly OutboxRecord[], info: DeadLetterInfo): number {
      try {
        return deadLetter.immediate(records, info);
      } catch (err) {
        throw storeError(err, 'moving records to dead letters');
      }
    },
    deadLetterCount(): number {
      return st.deadCount.get()!.n;
    },
    deadLetters(limit = 100) {
      return st.deadList.all(limit);
    },
    /** Recounts from the table: used at start-up so counters can never drift. */
    recount(): void {
      const t = st.totals.get()!;
      counters.set('outbox_rows', t.rows);
      counters.set('outbox_bytes', t.bytes ?? 0);
      db.transaction(() => counters.persistDirty()).immediate();
    },
  };
}
