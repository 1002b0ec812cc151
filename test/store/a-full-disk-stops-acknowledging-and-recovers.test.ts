// A real full disk: the database lives on a tmpfs mounted with a tiny size limit (root is
// needed to mount; CI runs as root). When it fills, commits fail with
// EDGEGW_STORE_DISK_FULL and nothing is acknowledged; after the tmpfs is enlarged the same
// store commits again, and every message acknowledged before is still there exactly once.
import t from 'tap';
import { join } from 'node:path';
import { createStore, type AcceptedMessage } from '../../gateway/store/index.js';
import { classifySeq } from '../../gateway/verify/replay.js';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { isEdgegwError } from '../../common/errors.js';
import { tinyTmpfs } from '../helpers/tmp.js';

const fs = tinyTmpfs(t, '384k');
const dir = fs.dir ?? '';

t.test('commits fail with EDGEGW_STORE_DISK_FULL, then recover with nothing acknowledged lost', { skip: fs.skip }, async (t) => {
  const path = join(dir, 'gw.db');
  const store = createStore({ clock: systemClock, log: silentLogger() }, { path, maxOutboxRows: 1e9, maxOutboxBytes: 1e12, maxBatchRows: 50 });
  const acked = new Set<number>();
  const failed: number[] = [];
  let fullError: unknown;
  let seq = 0;
  while (fullError === undefined && seq < 20_000) {
    const batch: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      seq++;
      const s = seq;
      const msg: AcceptedMessage = {
        deviceId: 'dev', kid: new Uint8Array(8), seq: s, ts: 0, rxMs: Date.now(), topic: 'd/dev/t/x',
        cose: new Uint8Array(1024).fill(s & 0xff),
      };
      batch.push(store.ingest.commit(msg).then(() => void acked.add(s), (err) => { fullError = err; failed.push(s); }));
    }
    await Promise.all(batch);
  }
  t.ok(isEdgegwError(fullError, 'EDGEGW_STORE_DISK_FULL'), 'the full disk is reported by code');
  t.ok(acked.size > 10, `some messages were acknowledged before the disk filled (${acked.size})`);
  t.equal(store.ingest.lastError()?.code, 'EDGEGW_STORE_DISK_FULL', 'the store says so until a commit succeeds');

  fs.grow('64m');
  // The replay window of a failed batch is never committed: a retried seq is new again.
  const resumed = store.replayState('dev');
  t.equal(resumed.high, Math.max(...acked), 'the committed window ends at the last acknowledged seq');
  t.same(failed.filter((s) => classifySeq(resumed, s) !== 'new'), [], 'no failed seq is marked as seen');
  const retry = failed[0]!;
  await store.ingest.commit({ deviceId: 'dev', kid: new Uint8Array(8), seq: retry, ts: 0, rxMs: Date.now(), topic: 'd/dev/t/x', cose: new Uint8Array(10) });
  acked.add(retry);
  t.equal(store.ingest.lastError(), undefined, 'recovered once space returned');
  await store.close();

  const reopened = createStore({ clock: systemClock, log: silentLogger() }, { path, maxOutboxRows: 1e9, maxOutboxBytes: 1e12, maxBatchRows: 50 });
  t.teardown(() => reopened.close());
  const seqs: number[] = [];
  let after = 0;
  for (;;) {
    const rows = reopened.outbox.read(after, 1000, 1 << 30);
    if (rows.length === 0) break;
    for (const r of rows) seqs.push(r.seq);
    after = rows[rows.length - 1]!.id;
  }
  const present = new Set(seqs);
  t.equal(present.size, seqs.length, 'no message stored twice');
  t.same([...acked].filter((s) => !present.has(s)), [], 'every acknowledged message is present');
});
