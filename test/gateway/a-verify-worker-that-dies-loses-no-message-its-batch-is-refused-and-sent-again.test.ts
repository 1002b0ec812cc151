// A verify worker that dies mid-batch: the messages it was checking are neither stored nor
// acknowledged but refused (counted as EDGEGW_INTERNAL; the broker closes the connection), a
// new worker takes over, and when the device sends them again each is stored exactly once.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startGateway } from '../helpers/gateway.js';
import { makeDevice, connectDevice, signedTelemetry, publishQos1 } from '../helpers/devices.js';
import { systemClock } from '../../common/clock.js';
import { tempDir } from '../helpers/tmp.js';

t.test('a batch lost with its worker is refused, and stored once when the device sends it again', async (t) => {
  const marker = join(tempDir(t, 'edgegw-worker-'), 'died');
  process.env.EDGEGW_TEST_WORKER_MARKER = marker;
  t.teardown(() => void delete process.env.EDGEGW_TEST_WORKER_MARKER);
  const gw = await startGateway(t, { verifyWorkers: 1, verifyInlineWhenIdle: false }, systemClock, {
    verifyWorkerUrl: new URL('../verify/fixtures/worker-that-dies-once.mjs', import.meta.url),
  });
  const dev = await makeDevice(gw.registrar, 'unlucky');
  const bystander = await makeDevice(gw.registrar, 'bystander');
  const witness = await connectDevice(bystander, gw.ready.mqttsPort, gw.ready.caFile);
  t.teardown(() => void witness.end(true));

  const messages = [1, 2, 3].map((seq) => ({ seq, ...signedTelemetry(dev, seq) }));
  const first = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
  const acked: number[] = [];
  // Until the gateway closes the connection, or (wrongly) acknowledges all three.
  await new Promise<void>((resolve) => {
    first.once('close', () => resolve());
    for (const m of messages) {
      first.publish(m.topic, m.payload, { qos: 1 }, (err) => {
        if (!err && acked.push(m.seq) === messages.length) resolve();
      });
    }
  });
  first.end(true);

  const store = gw.gateway.store;
  t.ok(existsSync(marker), 'the worker died on its first batch');
  t.notOk(acked.includes(1), 'the first message, in the lost batch, was not acknowledged');
  const refused = store.counters.get('refused.EDGEGW_INTERNAL');
  t.ok(refused >= 1 && refused <= 3, `the lost checks were refused and counted (${refused})`);
  t.equal(store.counters.get('rejected.EDGEGW_COSE_BAD_SIGNATURE'), 0, 'a lost check is not taken for a bad signature');

  // The device sends what was not acknowledged again, with the same seqs (PROTOCOL.md §3).
  const again = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
  t.teardown(() => void again.end(true));
  for (const m of messages) await publishQos1(again, m.topic, m.payload);
  const other = signedTelemetry(bystander, 1);
  await publishQos1(witness, other.topic, other.payload);

  const rows = store.outbox.read(0, 100, 1 << 20);
  t.same(rows.filter((r) => r.deviceId === dev.id).map((r) => r.seq), [1, 2, 3], 'each message stored exactly once, in order');
  t.same(rows.filter((r) => r.deviceId === bystander.id).map((r) => r.seq), [1], 'the new worker checks other devices too');
  t.equal(store.counters.get('accepted'), 4);
  // Messages checked by the new worker before the connection closed were stored but not
  // acknowledged: sent again, they are duplicates, acknowledged and not stored twice.
  t.equal(store.counters.get('duplicates'), 3 - refused, 'what was stored before the close came back as duplicates');
  t.equal(store.counters.get('refused.EDGEGW_INTERNAL'), refused, 'nothing refused once the worker was replaced');
  t.equal(gw.gateway.verifyStats().jobs, 7, 'every check, the lost ones too, ran on a worker');
});
