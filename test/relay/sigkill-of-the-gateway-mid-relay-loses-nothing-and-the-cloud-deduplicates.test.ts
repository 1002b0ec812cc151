// Issue 4, done-when: SIGKILL of the gateway in the middle of a relay. The gateway (store +
// relay, our real modules) runs in a child process; the cloud holds its answer for a while
// after storing a batch, and the gateway is killed right then: the cloud has the batch, the
// gateway never heard. After a restart nothing is lost, the re-sent batch carries the same
// Idempotency-Key and the cloud recognises it, and every record is stored exactly once.
import t from 'tap';
import { join } from 'node:path';
import { createRelay } from '../../gateway/relay/index.js';
import { readStatus } from '../../gateway/store/index.js';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../helpers/tmp.js';
import { allRecords, collectAlerts, fill, makeFleet, openStore, relayOptions, reverifyAll, spawnFixture, startCloud, waitFor } from './fixtures/fleet.js';

t.test('SIGKILL while the cloud holds an answer: restart re-sends, the cloud deduplicates, nothing is lost', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'gateway.db');
  const fleet = makeFleet(6, 'kill');
  const filling = openStore(t, dir);
  const total = await fill(filling, fleet, 500);
  filling.close();

  const cloud = await startCloud(t, tempDir(t), fleet, { faults: { answerDelayMs: 1500 } });
  const options = relayOptions(cloud.ready, { batchMaxRecords: 100, maxInFlight: 2 });
  const gateway = await spawnFixture(t, 'gateway-process.ts', [path, JSON.stringify(options)]);

  // The moment a batch is stored, its answer is still 1.5 s away: kill the gateway now.
  await waitFor('the cloud stored a batch', () => cloud.sim.stats().batches >= 1, 60_000, 5);
  await gateway.kill();
  t.equal(gateway.proc.signalCode, 'SIGKILL');
  const atKill = cloud.sim.stats();
  const status = readStatus(path);
  t.ok(atKill.stored.records > 0, `the cloud stored ${atKill.stored.records} records before the kill`);
  t.equal(status.counters.outbox_rows, total - (status.counters.relayed ?? 0), 'the outbox and the relayed count agree after the crash');
  t.ok((status.counters.outbox_rows ?? 0) + atKill.stored.records > total, 'some records are both stored at the cloud and still in the outbox');

  // Restart: the same store, a new relay (our modules again, in this process).
  cloud.sim.setFaults({ answerDelayMs: 0 });
  const store = openStore(t, dir);
  const { alerts } = collectAlerts();
  const relay = createRelay({ store, log: silentLogger(), clock: systemClock, alerts }, options);
  await relay.start();
  t.teardown(() => relay.stop());
  await waitFor('outbox drained after restart', () => store.counters.get('outbox_rows') === 0, 60_000);

  const cs = cloud.sim.stats();
  t.ok(cs.duplicateBatches >= 1, `the re-sent batch was recognised by its Idempotency-Key (${cs.duplicateBatches})`);
  t.equal(cs.idempotencyConflicts, 0, 'a re-sent batch has the same body as the first time');
  t.equal(cs.stored.records, total, 'every record stored');
  const records = await allRecords(cloud.ready);
  t.equal(new Set(records.map((r) => `${r.dev}/${r.seq}`)).size, total, 'each exactly once');
  t.same(reverifyAll(records, fleet).failures, [], 'and each re-verifies end to end');
  t.equal(store.outbox.deadLetterCount(), 0);
});
