import t from 'tap';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createStore, openDatabase, type AcceptedMessage } from '../../gateway/store/index.js';
import { NEW_DATABASE_PAGE_SIZE } from '../../gateway/store/db.js';
import { manualClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../helpers/tmp.js';

const deps = { clock: manualClock(1_700_000_000_000), log: silentLogger() };
const limits = { maxOutboxRows: 1_000_000, maxOutboxBytes: 1 << 30, maxBatchRows: 2000 };
/** A WAL frame: a 24-byte header and the page. */
const FRAME_HEADER = 24;

let seq = 0;
function message(device: number): AcceptedMessage {
  seq++;
  return { deviceId: `dev-${device}`, kid: new Uint8Array(8).fill(1), seq, ts: 0, rxMs: 0, topic: `d/dev-${device}/t/x`, cose: new Uint8Array(110).fill(seq & 0xff) };
}

t.test('one message per commit, as at a site\'s rates, writes about 3.5 KB of log, not 16.7 KB', async (t) => {
  const dir = tempDir(t);
  // No periodic checkpoint: the log's frame count below is all of the commits' writes.
  const store = createStore(deps, { path: join(dir, 'gw.db'), ...limits, checkpointIntervalMs: 600_000 });
  t.teardown(() => store.close());
  t.equal(store.db.pragma('page_size', { simple: true }), NEW_DATABASE_PAGE_SIZE, 'a new database has the small page size');
  // Every device gets its replay row first, then the log starts again from empty.
  for (let d = 0; d < 100; d++) await store.ingest.commit(message(d));
  const emptied = await store.checkpointer.checkpointNow();
  t.equal(emptied.checkpointed, emptied.walFrames, 'the log was copied whole');
  await store.ingest.commit(message(0));
  const before = (await store.checkpointer.checkpointNow()).walFrames;

  const N = 400;
  for (let i = 0; i < N; i++) await store.ingest.commit(message(i % 100));
  const after = (await store.checkpointer.checkpointNow()).walFrames;
  t.ok(after > before, `${after - before} frames for ${N} commits`);
  const bytesPerMessage = ((after - before) * (NEW_DATABASE_PAGE_SIZE + FRAME_HEADER)) / N;
  // Three pages a commit (outbox row, replay window, counters): with 4 KiB pages and the
  // outbox's AUTOINCREMENT sequence as a fourth, that was 16.7 KB a message; with 1 KiB pages
  // and the sequence, 4.5 KB.
  t.ok(bytesPerMessage < 4000, `${Math.round(bytesPerMessage)} bytes of log per 110-byte message`);
});

t.test('a database made with the default 4 KiB pages keeps them and opens as before', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'old.db');
  const old = new Database(path);
  old.exec('CREATE TABLE made_before (x INTEGER)');
  t.equal(old.pragma('page_size', { simple: true }), 4096);
  old.close();
  const db = openDatabase(path);
  t.teardown(() => db.close());
  t.equal(db.pragma('page_size', { simple: true }), 4096, 'its page size is left alone');
  t.ok(db.prepare("SELECT name FROM sqlite_master WHERE name = 'outbox'").get(), 'and its schema is brought up to date');
});
