/**
 * The cloud simulator's own SQLite file (not the gateway's store): verified records, unique
 * by (dev, kid, seq) as PROTOCOL.md §8 asks; records that failed re-verification, with the
 * reason; and the Idempotency-Keys seen, with a digest of their body and the answer given.
 */
import Database from 'better-sqlite3';
import { chmodSync, existsSync } from 'node:fs';
import { EdgegwError } from '../common/errors.js';

export interface IngestRecord {
  gw: string;
  dev: string;
  kid: Uint8Array;
  seq: number;
  ts: number;
  rx: number;
  topic: string;
  cose: Uint8Array;
}

export interface StoredRecord {
  id: number;
  gw: string;
  dev: string;
  kid: string;
  seq: number;
  ts: number;
  rx: number;
  topic: string;
  cose: string;
  receivedMs: number;
}

export interface RejectedRecord {
  id: number;
  dev: string;
  kid: string;
  seq: number;
  reason: string;
  detail: string | null;
  receivedMs: number;
}

export interface IdempotentAnswer {
  digest: Buffer;
  status: number;
  body: string;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    gw TEXT NOT NULL, dev TEXT NOT NULL, kid BLOB NOT NULL, seq INTEGER NOT NULL,
    ts INTEGER NOT NULL, rx INTEGER NOT NULL, topic TEXT NOT NULL, cose BLOB NOT NULL,
    received_ms INTEGER NOT NULL,
    UNIQUE (dev, kid, seq)
  ) STRICT;
  CREATE INDEX IF NOT EXISTS records_dev ON records(dev, id);
  CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dev TEXT NOT NULL, kid BLOB NOT NULL, seq INTEGER NOT NULL, topic TEXT NOT NULL, cose BLOB NOT NULL,
    reason TEXT NOT NULL, detail TEXT, received_ms INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY, digest BLOB NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL, created_ms INTEGER NOT NULL
  ) STRICT;
`;

export type CloudDb = ReturnType<typeof openCloudDb>;

export function openCloudDb(path: string) {
  const fresh = !existsSync(path);
  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (err) {
    throw new EdgegwError('EDGEGW_STORE_IO', `cloud-sim cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (fresh) chmodSync(path, 0o600);
  // The cloud answers 2xx only after the commit, as the gateway's no-loss rule assumes.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(SCHEMA);

  const st = {
    insert: db.prepare('INSERT OR IGNORE INTO records (gw, dev, kid, seq, ts, rx, topic, cose, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    reject: db.prepare('INSERT INTO rejected (dev, kid, seq, topic, cose, reason, detail, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
    idemGet: db.prepare<[string], { digest: Buffer; status: number; body: string }>('SELECT digest, status, body FROM idempotency WHERE key = ?'),
    idemPut: db.prepare('INSERT INTO idempotency (key, digest, status, body, created_ms) VALUES (?, ?, ?, ?, ?)'),
    since: db.prepare<[number, number], RowOut>('SELECT * FROM records WHERE id > ? ORDER BY id LIMIT ?'),
    sinceDev: db.prepare<[string, number, number], RowOut>('SELECT * FROM records WHERE dev = ? AND id > ? ORDER BY id LIMIT ?'),
    rejectedSince: db.prepare<[number, number], RejectedRow>('SELECT id, dev, kid, seq, reason, detail, received_ms FROM rejected WHERE id > ? ORDER BY id LIMIT ?'),
    count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM records'),
    countRejected: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM rejected'),
  };

  interface RowOut {
    id: number; gw: string; dev: string; kid: Buffer; seq: number; ts: number; rx: number; topic: string; cose: Buffer; received_ms: number;
  }
  interface RejectedRow {
    id: number; dev: string; kid: Buffer; seq: number; reason: string; detail: string | null; received_ms: number;
  }

  const toStored = (r: RowOut): StoredRecord => ({
    id: r.id, gw: r.gw, dev: r.dev, kid: r.kid.toString('hex'), seq: r.seq, ts: r.ts, rx: r.rx, topic: r.topic,
    cose: r.cose.toString('base64'), receivedMs: r.received_ms,
  });

  type Bad = { r: IngestRecord; reason: string; detail?: string };
  type AnswerFor = (c: { inserted: number; duplicates: number }) => { status: number; body: string };

  /** One transaction per batch: the verified records, the refused ones and the idempotency entry. */
  const commitBatch = db.transaction(
    (key: string, digest: Buffer, good: readonly IngestRecord[], bad: readonly Bad[], nowMs: number, answerFor: AnswerFor) => {
      let inserted = 0;
      for (const r of good) inserted += st.insert.run(r.gw, r.dev, r.kid, r.seq, r.ts, r.rx, r.topic, r.cose, nowMs).changes;
      for (const { r, reason, detail } of bad) st.reject.run(r.dev, r.kid, r.seq, r.topic, r.cose, reason, detail ?? null, nowMs);
      const counts = { inserted, duplicates: good.length - inserted };
      const a = answerFor(counts);
      st.idemPut.run(key, digest, a.status, a.body, nowMs);
      return { ...counts, answer: { digest, ...a } };
    },
  );

  return {
    idempotent(key: string): IdempotentAnswer | undefined {
      return st.idemGet.get(key);
    },
    /** `answerFor` builds the stored answer from the insert counts, inside the transaction. */
    commit(key: string, digest: Buffer, good: readonly IngestRecord[], bad: readonly Bad[], nowMs: number, answerFor: AnswerFor): { inserted: number; duplicates: number; answer: IdempotentAnswer } {
      return commitBatch.immediate(key, digest, good, bad, nowMs, answerFor);
    },
    records(dev: string | undefined, since: number, limit: number): StoredRecord[] {
      return (dev === undefined ? st.since.all(since, limit) : st.sinceDev.all(dev, since, limit)).map(toStored);
    },
    rejected(since: number, limit: number): RejectedRecord[] {
      return st.rejectedSince.all(since, limit).map((r) => ({
        id: r.id, dev: r.dev, kid: r.kid.toString('hex'), seq: r.seq, reason: r.reason, detail: r.detail, receivedMs: r.received_ms,
      }));
    },
    counts(): { records: number; rejected: number } {
      return { records: st.count.get()!.n, rejected: st.countRejected.get()!.n };
    },
    close(): void {
      db.close();
    },
  };
}
