import t from 'tap';
import { join } from 'node:path';
import { createStore, type AcceptedMessage } from '../../gateway/store/index.js';
import { manualClock } from '../../common/clock.js';
import { createLogger, silentLogger } from '../../common/log.js';
import { isEdgegwError } from '../../common/errors.js';
import { tempDir } from '../helpers/tmp.js';

const deps = { clock: manualClock(1_700_000_000_000), log: silentLogger() };
const limits = { maxOutboxRows: 1_000_000, maxOutboxBytes: 1 << 30, maxBatchRows: 2000 };

function message(deviceId: string, seq: number, size = 40): AcceptedMessage {
  return {
    deviceId,
    kid: new Uint8Array(8).fill(seq & 0xff),
    seq,
    ts: 0,
    rxMs: 1_700_000_000_000 + seq,
    topic: `d/${deviceId}/t/temp`,
    cose: new Uint8Array(size).fill(seq & 0xff),
  };
}

t.test('many concurrent commits share transactions and all become durable', async (t) => {
  const path = join(tempDir(t), 'gw.db');
  const store = createStore(deps, { path, ...limits });
  const commits: Promise<void>[] = [];
  for (let seq = 1; seq <= 3000; seq++) {
    commits.push(store.ingest.commit(message('dev-1', seq)));
  }
  await Promise.all(commits);
  t.equal(store.counters.get('accepted'), 3000);
  t.same(store.ingest.usage(), { rows: 3000, bytes: 3000 * 40 });
  await store.close();

  const again = createStore(deps, { path, ...limits });
  t.teardown(() => again.close());
  t.equal(again.counters.get('accepted'), 3000, 'counters survive a reopen');
  t.same(again.ingest.usage(), { rows: 3000, bytes: 120000 }, 'outbox totals recounted from the table');
  const replay = again.replayState('dev-1');
  t.equal(replay.high, 3000, 'replay window committed with the messages');
  t.equal(replay.bitmap, (1n << 64n) - 1n);
  const first = again.outbox.read(0, 5, 1 << 20);
  t.same(first.map((r) => r.seq), [1, 2, 3, 4, 5], 'outbox keeps arrival order');
  t.equal(first[0]!.topic, 'd/dev-1/t/temp');
});

t.test('the outbox reads within byte bounds, acks and dead-letters with exact totals', async (t) => {
  const store = createStore(deps, { path: join(tempDir(t), 'gw.db'), ...limits });
  t.teardown(() => store.close());
  for (let seq = 1; seq <= 10; seq++) {
    await store.ingest.commit(message('d2', seq, 100));
  }
  const batch = store.outbox.read(0, 100, 350);
  t.equal(batch.length, 3, 'stops before exceeding maxBytes');
  t.equal(store.outbox.read(0, 100, 10).length, 1, 'always returns at least one record');
  t.equal(store.outbox.ack(batch.map((r) => r.id)), 3);
  t.equal(store.outbox.ack(batch.map((r) => r.id)), 0, 'acking twice is harmless');
  const next = store.outbox.read(batch[2]!.id, 2, 1 << 20);
  t.same(next.map((r) => r.seq), [4, 5]);
  t.equal(store.outbox.deadLetter(next, { batchId: 'b1', status: 400, reason: 'rejected', nowMs: 1 }), 2);
  t.equal(store.outbox.deadLetterCount(), 2);
  t.same(store.ingest.usage(), { rows: 5, bytes: 500 });
  t.equal(store.counters.get('relayed'), 3);
  t.equal(store.counters.get('dead_lettered'), 2);
});

t.test('hasRoom enforces the row and byte bounds, counting messages still pending', async (t) => {
  const store = createStore(deps, { path: join(tempDir(t), 'gw.db'), maxOutboxRows: 3, maxOutboxBytes: 1000, maxBatchRows: 10 });
  t.teardown(() => store.close());
  t.ok(store.ingest.hasRoom(100));
  t.notOk(store.ingest.hasRoom(1001), 'one message larger than the byte bound');
  const p1 = store.ingest.commit(message('d3', 1));
  const p2 = store.ingest.commit(message('d3', 2));
  t.ok(store.ingest.hasRoom(40));
  const p3 = store.ingest.commit(message('d3', 3));
  t.notOk(store.ingest.hasRoom(40), 'three pending rows fill a 3-row outbox');
  await Promise.all([p1, p2, p3]);
  t.notOk(store.ingest.hasRoom(40));
  store.outbox.ack([store.outbox.read(0, 1, 1000)[0]!.id]);
  t.ok(store.ingest.hasRoom(40), 'room again once the relay drains');
});

t.test('the registry refuses duplicates, rotates keys with a grace period and revokes certificates', async (t) => {
  const clock = manualClock(1_000_000);
  const store = createStore({ clock, log: silentLogger() }, { path: join(tempDir(t), 'gw.db'), ...limits });
  t.teardown(() => store.close());
  const reg = store.registry;
  const kidA = new Uint8Array(8).fill(1);
  reg.addDevice({ id: 'dev-a', alg: 'EdDSA', pub: new Uint8Array(32).fill(1), kid: kidA });
  t.throws(() => reg.addDevice({ id: 'dev-a', alg: 'EdDSA', pub: new Uint8Array(32).fill(2), kid: new Uint8Array(8).fill(2) }), {
    code: 'EDGEGW_REGISTRY_DEVICE_EXISTS',
  });
  t.throws(() => reg.addDevice({ id: 'dev-b', alg: 'EdDSA', pub: new Uint8Array(32).fill(1), kid: kidA }), {
    code: 'EDGEGW_REGISTRY_KEY_EXISTS',
  });
  t.throws(() => reg.setStatus('nobody', 'revoked'), { code: 'EDGEGW_REGISTRY_UNKNOWN_DEVICE' });

  const kidA2 = new Uint8Array(8).fill(3);
  reg.rotateKey('dev-a', { alg: 'ES256', pub: new Uint8Array(65).fill(4), kid: kidA2 }, 60_000);
  t.equal(reg.findKey(kidA)!.status, 'retiring');
  t.equal(reg.findKey(kidA)!.retireAtMs, 1_060_000);
  t.equal(reg.findKey(kidA2)!.status, 'active');
  clock.advance(60_000);
  t.equal(reg.retireExpiredKeys(), 1);
  t.equal(reg.findKey(kidA)!.status, 'retired');

  reg.recordCert({ serial: 'ABCD', deviceId: 'dev-a', kid: kidA2, notAfterMs: 2_000_000 });
  t.equal(reg.getCert('abcd')!.revokedMs, null, 'serials are case-insensitive');
  reg.setStatus('dev-a', 'revoked');
  t.equal(reg.getDevice('dev-a')!.status, 'revoked');
  t.equal(reg.getCert('ABCD')!.revokedMs, clock.now(), 'revoking a device revokes its certificates');
  t.equal(reg.revokedCerts().length, 1);
});

t.test('a second connection sees changes, and the gateway notices them', async (t) => {
  const path = join(tempDir(t), 'gw.db');
  const store = createStore(deps, { path, ...limits });
  t.teardown(() => store.close());
  t.notOk(store.changedExternally());
  const other = createStore(deps, { path, ...limits });
  other.registry.addDevice({ id: 'x', alg: 'EdDSA', pub: new Uint8Array(32).fill(9), kid: new Uint8Array(8).fill(9) });
  other.close();
  t.ok(store.changedExternally(), 'data_version moved');
  t.equal(store.registry.getDevice('x')!.status, 'active');
});

t.test('opening a database in a directory that does not exist fails with a store error', async (t) => {
  try {
    createStore(deps, { path: '/nonexistent-dir/x/gw.db', ...limits });
    t.fail('should throw');
  } catch (err) {
    t.ok(isEdgegwError(err, 'EDGEGW_STORE_IO'));
  }
});

t.test('a commit callback that throws does not cut short its group, and commits go on', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ level: 'error', destination: { write: (line: string) => void lines.push(line) } });
  const store = createStore({ ...deps, log }, { path: join(tempDir(t), 'gw.db'), ...limits });
  t.teardown(() => store.close());
  const answers: (string | undefined)[] = new Array(10).fill(undefined);
  await new Promise<void>((resolve) => {
    let left = 10;
    for (let seq = 1; seq <= 10; seq++) {
      // Enqueued in one turn: one transaction, answered by one loop once the log is flushed.
      store.ingest.enqueue(message('dev-1', seq), (err) => {
        answers[seq - 1] = err === undefined ? 'durable' : err.code;
        if (--left === 0) resolve();
        if (seq === 4) throw new Error('a bug in a caller');
      });
    }
  });
  t.same(answers, new Array(10).fill('durable'), 'every message of the group was answered, after the throwing one too');
  t.equal(lines.length, 1, 'the throw was logged once');
  t.match(JSON.parse(lines[0]!), { level: 'error', err: { message: 'a bug in a caller' } });
  await store.ingest.commit(message('dev-1', 11));
  t.equal(store.counters.get('accepted'), 11, 'the next commit goes through');
});
