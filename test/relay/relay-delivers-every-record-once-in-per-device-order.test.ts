// The relay drains the outbox to a real cloud-sim over mutual TLS: every record arrives once,
// each device's records in outbox order, every one re-verifies end to end, and the outbox is
// empty afterwards. Batches respect their record and byte bounds.
import t from 'tap';
import { createRelay } from '../../gateway/relay/index.js';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../helpers/tmp.js';
import { allRecords, collectAlerts, fill, makeFleet, nextMessage, openStore, relayOptions, reverifyAll, startCloud, waitFor } from './fixtures/fleet.js';

t.test('records of 20 devices arrive once, in per-device order, and re-verify', async (t) => {
  const dir = tempDir(t);
  const fleet = [...makeFleet(16, 'ed'), ...makeFleet(4, 'p256', 'ES256')];
  const store = openStore(t, dir);
  const cloud = await startCloud(t, tempDir(t), fleet);
  const total = await fill(store, fleet, 150);
  const { alerts, events } = collectAlerts();
  const relay = createRelay({ store, log: silentLogger(), clock: systemClock, alerts }, relayOptions(cloud.ready, { batchMaxRecords: 100, maxInFlight: 4 }));
  await relay.start();
  t.teardown(() => relay.stop());

  await waitFor('outbox drained', () => store.counters.get('outbox_rows') === 0);
  const stats = relay.stats();
  t.equal(stats.acceptedRecords, total, 'every record accepted');
  t.ok(stats.acceptedBatches >= total / 100, 'batches hold at most batchMaxRecords');
  t.equal(stats.deadLetteredRecords, 0);
  t.equal(store.counters.get('relayed'), total, 'the store counted them relayed');
  t.equal(store.outbox.read(0, 10, 1 << 20).length, 0, 'the outbox is empty');

  const cs = cloud.sim.stats();
  t.equal(cs.stored.records, total, 'the cloud stored each record once');
  t.equal(cs.rejectedRecords, 0, 'no record failed the cloud re-verification');
  t.equal(cs.duplicateRecords, 0);

  const records = await allRecords(cloud.ready);
  t.equal(records.length, total);
  const check = reverifyAll(records, fleet);
  t.same(check.failures, [], 'every stored record re-verifies with the reference verifier');
  t.equal(check.ok, total);

  // Storage order at the cloud is arrival order: per device, seq must only increase.
  const last = new Map<string, number>();
  let outOfOrder = 0;
  for (const r of records) {
    if ((last.get(r.dev) ?? 0) >= r.seq) outOfOrder++;
    last.set(r.dev, r.seq);
  }
  t.equal(outOfOrder, 0, 'per-device order kept across 4 lanes');
  t.same([...last.values()].sort((a, b) => a - b)[0], 150, 'every device got through its last seq');
  t.same(events.filter((e) => e.severity !== 'info'), [], 'no alert on a healthy run');
  t.equal(relay.stats().state, 'running');
});

t.test('a batch stops at batchMaxBytes and a lone oversized record still leaves', async (t) => {
  const dir = tempDir(t);
  const fleet = makeFleet(1, 'big');
  const store = openStore(t, dir);
  const cloud = await startCloud(t, tempDir(t), fleet);
  // ~8 KiB bodies: 1 KiB batchMaxBytes can only ever take one record per batch.
  const body = new Uint8Array(8000).fill(7);
  for (let i = 0; i < 5; i++) {
    await store.ingest.commit(nextMessage(fleet[0]!, Date.now(), body));
  }
  const { alerts } = collectAlerts();
  const relay = createRelay({ store, log: silentLogger(), clock: systemClock, alerts }, relayOptions(cloud.ready, { batchMaxBytes: 1024, maxInFlight: 1 }));
  await relay.start();
  t.teardown(() => relay.stop());
  await waitFor('outbox drained', () => store.counters.get('outbox_rows') === 0);
  t.equal(relay.stats().acceptedBatches, 5, 'one record per batch');
  t.equal(cloud.sim.stats().stored.records, 5);
  t.equal(cloud.sim.stats().rejectedRecords, 0);
});
