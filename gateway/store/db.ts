/**
 * Opens the gateway's SQLite database and brings its schema up to date. This folder is
 * the only user of better-sqlite3.
 *
 * WAL with synchronous=FULL by default: a commit is on disk when it returns. The gateway's
 * own connection (`walSync: true`) uses NORMAL with no automatic checkpoints instead, and
 * makes its commits durable itself, off the event loop, before it acknowledges anything
 * (durable.ts).
 */
import Database from 'better-sqlite3';
import { chmodSync, existsSync } from 'node:fs';
import { EdgegwError } from '../../common/errors.js';

export type Db = Database.Database;

const MIGRATIONS: string[] = [
  // 1: registry, replay state, outbox, dead letters, audit, counters. The outbox's ids are
  // given out by the gateway (outbox.ts lastOutboxId); a database created before that has
  // `id INTEGER PRIMARY KEY AUTOINCREMENT` there, which works the same, with one more page
  // written per commit.
  `
  CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('active', 'quarantined', 'revoked')),
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    firmware TEXT,
    model TEXT
  ) STRICT;
  CREATE TABLE keys (
    kid BLOB PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(id),
    alg TEXT NOT NULL CHECK (alg IN ('EdDSA', 'ES256')),
    pub BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'retiring', 'retired')),
    created_ms INTEGER NOT NULL,
    retire_at_ms INTEGER
  ) STRICT;
  CREATE INDEX keys_device ON keys(device_id);
  CREATE TABLE certs (
    serial TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(id),
    kid BLOB NOT NULL,
    not_after_ms INTEGER NOT NULL,
    revoked_ms INTEGER
  ) STRICT;
  CREATE INDEX certs_device ON certs(device_id);
  CREATE TABLE replay (
    device_id TEXT PRIMARY KEY,
    high INTEGER NOT NULL,
    bitmap BLOB NOT NULL
  ) STRICT;
  CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    kid BLOB NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    rx_ms INTEGER NOT NULL,
    topic TEXT NOT NULL,
    cose BLOB NOT NULL
  ) STRICT;
  CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id TEXT NOT NULL,
    status INTEGER,
    reason TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    kid BLOB NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    rx_ms INTEGER NOT NULL,
    topic TEXT NOT NULL,
    cose BLOB NOT NULL
  ) STRICT;
  CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    code TEXT,
    device_id TEXT,
    address TEXT,
    detail TEXT
  ) STRICT;
  CREATE INDEX audit_ts ON audit(ts_ms);
  CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE runtime (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;
  CREATE TABLE command_seq (
    device_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
  ) STRICT;
  `,
];

export interface OpenOptions {
  /** Reader-only handle, e.g. for `edgegw status` while the gateway runs. */
  readonly?: boolean;
  /**
   * The caller flushes the WAL itself (createWalSync) and runs checkpoints elsewhere
   * (startCheckpointer): synchronous=NORMAL, wal_autocheckpoint=0 on this connection, and
   * the -wal file cut back to WAL_SIZE_LIMIT_BYTES when the log starts again.
   */
  walSync?: boolean;
}

/**
 * The -wal file is reused from its beginning after each checkpoint that reaches its end
 * (durable.ts); one that grew past this (checkpoints failing on a full disk, a long burst) is
 * cut back to it then, so the file does not keep its largest size for good.
 */
export const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * The page size of a new database. Every commit writes each page it changed in full to the
 * log, and at a site's rates a commit holds one message: its outbox row, its device's replay
 * window and the counters dirty three pages (four in a database with an AUTOINCREMENT
 * outbox, outbox.ts lastOutboxId). With SQLite's default of
 * 4 KiB that was 16.7 KB of log per 110-byte message, and 12–21 KB of disk writes per message
 * at 1,000 and 100 messages/s; with 1 KiB pages 5.6–8.9 KB, at no measurable cost in
 * throughput (docs/performance.md). An SD card wears with what is written to it. A database
 * created before keeps its page size (changing it means rewriting the file).
 */
export const NEW_DATABASE_PAGE_SIZE = 1024;

export function openDatabase(path: string, options: OpenOptions = {}): Db {
  const fresh = !existsSync(path);
  let db: Db;
  try {
    db = new Database(path, { readonly: options.readonly === true, fileMustExist: options.readonly === true });
  } catch (err) {
    throw new EdgegwError('EDGEGW_STORE_IO', `cannot open database ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (fresh && !options.readonly) chmodSync(path, 0o600);
  db.pragma('busy_timeout = 5000');
  if (options.readonly) return db;
  // Before the first write, while the file is still empty: only then can the size be set.
  if (fresh) db.pragma(`page_size = ${NEW_DATABASE_PAGE_SIZE}`);
  db.pragma('journal_mode = WAL');
  db.pragma(options.walSync ? 'synchronous = NORMAL' : 'synchronous = FULL');
  if (options.walSync) {
    db.pragma('wal_autocheckpoint = 0');
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
  }
  db.pragma('foreign_keys = ON');
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    throw new EdgegwError('EDGEGW_STORE_IO', `database schema ${version} is newer than this edgegw (${MIGRATIONS.length})`);
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}

/** Maps a better-sqlite3 error to our codes: a full disk is its own, expected condition. */
export function storeError(err: unknown, what: string): EdgegwError {
  const code = (err as { code?: string }).code ?? '';
  if (code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR') && /full|space/i.test(String((err as Error).message))) {
    return new EdgegwError('EDGEGW_STORE_DISK_FULL', `${what}: the database disk is full`, { cause: err });
  }
  return new EdgegwError('EDGEGW_STORE_IO', `${what}: ${(err as Error).message}`, { cause: err });
}
