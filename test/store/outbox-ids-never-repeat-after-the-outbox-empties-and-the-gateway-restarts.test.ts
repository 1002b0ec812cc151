import t, { type Test } from 'tap';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createStore, type AcceptedMessage, type Store } from '../../gateway/store/index.js';
import { OUTBOX_LAST_ID } from '../../gateway/store/outbox.js';
import { manualClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../helpers/tmp.js';

// Outbox ids make the relay's cursor and the §8 batch id (the cloud's Idempotency-Key): an id
// given out twice could make the cloud drop a new batch as one it has seen.

const deps = { clock: manualClock(1_700_000_000_000), log: silentLogger() };
const limits = { maxOutboxRows: 1_000_000, maxOutboxBytes: 1 << 30, maxBatchRows: 2000 };

let seq = 0;
function message(): AcceptedMessage {
  seq++;
  return { deviceId: 'dev-1', kid: new Uint8Array(8).fill(1), seq, ts: 0, rxMs: 0, topic: 'd/dev-1/t/x', cose: new Uint8Array(110).fill(seq & 0xff) };
}

/** Commits `n` messages and returns the ids they got. */
async function commitAndRead(store: Store, n: number): Promise<number[]> {
  const before = store.outbox.read(0, 1_000_000, 1 << 30).map((r) => r.id);
  await Promise.all(Array.from({ length: n }, () => store.ingest.commit(message())));
  const seen = new Set(before);
  return store.outbox.read(0, 1_000_000, 1 << 30).map((r) => r.id).filter((id) => !seen.has(id));
}

/** Deletes everything in the outbox, as the relay does once the cloud accepted it. */
function drain(t: Test, store: Store): void {
  const ids = store.outbox.read(0, 1_000_000, 1 << 30).map((r) => r.id);
  t.equal(store.outbox.ack(ids), ids.length);
}

t.test('a new database: ids go on after the outbox empties, and after a restart', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'gw.db');
  let store = createStore(deps, { path, ...limits });
  const sql = (store.db.prepare("SELECT sql FROM sqlite_master WHERE name = 'outbox'").get() as { sql: string }).sql;
  t.notMatch(sql, /AUTOINCREMENT/i, 'the outbox has no id sequence of its own');

  t.same(await commitAndRead(store, 5), [1, 2, 3, 4, 5]);
  drain(t, store);
  t.same(await commitAndRead(store, 2), [6, 7], 'the emptied outbox does not hand out 1 again');
  drain(t, store);
  await store.close();

  store = createStore(deps, { path, ...limits });
  t.teardown(() => store.close());
  t.equal(store.ingest.usage().rows, 0, 'the outbox is empty at the restart');
  t.same(await commitAndRead(store, 3), [8, 9, 10], 'nor after a restart');
  t.equal(store.counters.get(OUTBOX_LAST_ID), 10, 'the last id is kept with the counters');
});

t.test('a database with the AUTOINCREMENT outbox of before goes on from its sequence', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'gw.db');
  createStore(deps, { path, ...limits }).close();
  // The outbox as databases created before had it: 50 ids given out, all relayed since.
  const old = new Database(path);
  old.exec(`DROP TABLE outbox;
    CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, kid BLOB NOT NULL, seq INTEGER NOT NULL,
      ts INTEGER NOT NULL, rx_ms INTEGER NOT NULL, topic TEXT NOT NULL, cose BLOB NOT NULL) STRICT;`);
  const insert = old.prepare("INSERT INTO outbox (device_id, kid, seq, ts, rx_ms, topic, cose) VALUES ('dev-1', x'01', ?, 0, 0, 't', x'00')");
  for (let i = 1; i <= 50; i++) insert.run(i);
  old.exec('DELETE FROM outbox');
  t.equal((old.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { seq: number }).seq, 50);
  old.close();

  const store = createStore(deps, { path, ...limits });
  t.teardown(() => store.close());
  t.same(await commitAndRead(store, 2), [51, 52], 'ids go on from the sequence');
  t.equal(store.counters.get(OUTBOX_LAST_ID), 52);
});
