import t from 'tap';
import { join } from 'node:path';
import { copyFileSync, fdatasync, fdatasyncSync, fstatSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { createStore, type AcceptedMessage } from '../../gateway/store/index.js';
import type { SyncCalls } from '../../gateway/store/durable.js';
import { manualClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { isEdgegwError } from '../../common/errors.js';
import { tempDir } from '../helpers/tmp.js';

const deps = { clock: manualClock(1_700_000_000_000), log: silentLogger() };
const limits = { maxOutboxRows: 1_000_000, maxOutboxBytes: 1 << 30, maxBatchRows: 2000 };

function message(seq: number): AcceptedMessage {
  return { deviceId: 'dev-1', kid: new Uint8Array(8).fill(1), seq, ts: 0, rxMs: 0, topic: 'd/dev-1/t/temp', cose: new Uint8Array(40).fill(seq & 0xff) };
}

/** Real fdatasync calls whose completion the test releases, recording which file each flushed. */
function gatedCalls() {
  const held: (() => void)[] = [];
  const flushedInodes: number[] = [];
  let failNext: NodeJS.ErrnoException | undefined;
  const calls: SyncCalls = {
    fdatasync(fd, cb) {
      flushedInodes.push(fstatSync(fd).ino);
      const fail = failNext;
      failNext = undefined;
      fdatasync(fd, (err) => held.push(() => cb(fail ?? err)));
    },
    fdatasyncSync(fd) {
      flushedInodes.push(fstatSync(fd).ino);
      fdatasyncSync(fd);
    },
  };
  return {
    calls,
    flushedInodes,
    failNextWith(code: string) {
      failNext = Object.assign(new Error(`${code}: injected`), { code });
    },
    async releaseAll() {
      // The flush callback runs on the thread pool's schedule: wait for it to be held.
      for (let i = 0; i < 200 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      for (const release of held.splice(0)) release();
    },
  };
}

const settled = async (p: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> => {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  p.then(() => (state = 'resolved'), () => (state = 'rejected'));
  await new Promise((r) => setTimeout(r, 30));
  return state;
};

t.test('a commit resolves only after an fdatasync of the write-ahead log that began after it', async (t) => {
  const path = join(tempDir(t), 'gw.db');
  const gate = gatedCalls();
  const store = createStore(deps, { path, ...limits, syncCalls: gate.calls });
  t.teardown(() => store.close());

  const first = store.ingest.commit(message(1));
  t.equal(await settled(first), 'pending', 'committed, but not acknowledged while the flush runs');
  t.equal(store.outbox.read(0, 10, 1 << 20).length, 1, 'the row is committed (visible) already');
  t.same(gate.flushedInodes, [statSync(`${path}-wal`).ino], 'the flush was of the -wal file');

  // Arriving while that flush runs: not committed until it ends, then flushed by a new one.
  const second = store.ingest.commit(message(2));
  await new Promise((r) => setImmediate(r));
  t.equal(store.outbox.read(0, 10, 1 << 20).length, 1, 'the second waits for the running flush before it is committed');
  await gate.releaseAll();
  await first;
  t.equal(await settled(second), 'pending', 'the second is not covered by the first flush');
  t.equal(store.outbox.read(0, 10, 1 << 20).length, 2, 'committed once the first flush ended');
  await gate.releaseAll();
  await second;
  t.equal(gate.flushedInodes.length, 2, 'one flush per group of commits');
});

t.test('an audit event that arrives during a flush is committed when the flush ends', async (t) => {
  const gate = gatedCalls();
  const store = createStore(deps, { path: join(tempDir(t), 'gw.db'), ...limits, syncCalls: gate.calls });
  t.teardown(() => store.close());
  const first = store.ingest.commit(message(1));
  await new Promise((r) => setImmediate(r));
  store.ingest.audit({ tsMs: 1, kind: 'acl', detail: 'during the flush' });
  await new Promise((r) => setImmediate(r));
  t.same(store.recentAudit(10), [], 'waits while the flush runs');
  await gate.releaseAll();
  await first;
  await new Promise((r) => setTimeout(r, 20));
  t.same(store.recentAudit(10).map((e) => e.detail), ['during the flush'], 'committed without another message to carry it');
});

t.test('a failed flush acknowledges nothing, and the next one does', async (t) => {
  const gate = gatedCalls();
  const store = createStore(deps, { path: join(tempDir(t), 'gw.db'), ...limits, syncCalls: gate.calls });
  t.teardown(() => store.close());
  gate.failNextWith('EIO');
  const failed = store.ingest.commit(message(1));
  await gate.releaseAll();
  const err = await failed.then(() => undefined, (e: unknown) => e);
  t.ok(isEdgegwError(err) && err.code === 'EDGEGW_STORE_IO', 'rejected with EDGEGW_STORE_IO');
  t.match(String((err as Error).message), /fdatasync/, 'the error names the flush');
  t.equal(store.ingest.lastError()?.code, 'EDGEGW_STORE_IO', 'the store reports the failure');

  const next = store.ingest.commit(message(2));
  await gate.releaseAll();
  await next;
  t.pass('the next commit is acknowledged once its flush succeeds');
});

t.test('closing commits and flushes what is queued, and resolves it', async (t) => {
  const gate = gatedCalls();
  const path = join(tempDir(t), 'gw.db');
  const store = createStore(deps, { path, ...limits, syncCalls: gate.calls });
  const first = store.ingest.commit(message(1));
  const second = store.ingest.commit(message(2));
  store.close();
  await Promise.all([first, second]);
  t.ok(gate.flushedInodes.length >= 1, 'flushed at close');
  const db = new Database(path, { readonly: true });
  t.teardown(() => db.close());
  t.equal((db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n, 2, 'both rows are in the database');
});

t.test('the checkpoint worker copies the log into the database file', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'gw.db');
  const store = createStore(deps, { path, ...limits, checkpointIntervalMs: 60_000 });
  t.teardown(() => store.close());
  await Promise.all(Array.from({ length: 500 }, (_, i) => store.ingest.commit(message(i + 1))));
  const report = await store.checkpointer.checkpointNow();
  t.equal(report.error, undefined);
  t.ok(report.walFrames > 0, `the log held ${report.walFrames} frames`);
  t.equal(report.checkpointed, report.walFrames, 'all of them are in the database file now');
  // The database file alone, without its -wal, holds every row.
  copyFileSync(path, join(dir, 'copy.db'));
  const copy = new Database(join(dir, 'copy.db'));
  t.teardown(() => copy.close());
  t.equal((copy.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n, 500);
});
