import t from 'tap';
import { startGateway } from '../helpers/gateway.js';
import { makeDevice, connectDevice, signedTelemetry, publishQos1 } from '../helpers/devices.js';

// Devices that keep many publishes in flight: their checks go to two workers in batches, and
// a later batch may be answered before an earlier one. Each device's messages must still be
// judged, stored and acknowledged in the order it sent them.

t.test('a burst split over two workers is finished in order, whichever worker answers first', async (t) => {
  const gw = await startGateway(t, { verifyWorkers: 2, verifyInlineWhenIdle: false });
  const dev = await makeDevice(gw.registrar, 'burst', 'EdDSA');
  const client = await connectDevice(dev, gw.ready.mqttsPort, gw.ready.caFile);
  t.teardown(() => void client.end(true));
  // The broker reads a burst in one go; 32 checks are split over both workers, 16 each, and
  // the second half is answered first about every other time.
  const ROUNDS = 20;
  const BURST = 32;
  const acked: number[] = [];
  let seq = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const sends: Promise<void>[] = [];
    for (let i = 0; i < BURST; i++) {
      const s = ++seq;
      const m = signedTelemetry(dev, s);
      sends.push(publishQos1(client, m.topic, m.payload).then(() => void acked.push(s)));
    }
    await Promise.all(sends);
  }
  const total = ROUNDS * BURST;
  t.equal(gw.gateway.store.counters.get('accepted'), total);
  const rows = gw.gateway.store.outbox.read(0, total + 10, 1 << 24);
  t.same(rows.map((r) => r.seq), Array.from({ length: total }, (_, k) => k + 1), 'stored in the order sent');
  t.same(acked, Array.from({ length: total }, (_, k) => k + 1), 'acknowledged in the order sent');
  const { batches, jobs } = gw.gateway.verifyStats();
  t.equal(jobs, total, 'every check ran on a worker');
  t.ok(batches >= 2 * ROUNDS, `each burst went out as two batches or more (${batches} batches)`);
});

t.test('pipelined messages of many devices are stored in each device\'s order, a forged one among them refused', async (t) => {
  const gw = await startGateway(t, { verifyWorkers: 2, verifyInlineWhenIdle: false });
  const DEVICES = 12;
  const PER_DEVICE = 100;
  const FORGED_SEQ = 31;
  const devices = await Promise.all(Array.from({ length: DEVICES }, (_, i) => makeDevice(gw.registrar, `pipe-${i}`, i % 3 === 0 ? 'ES256' : 'EdDSA')));
  const clients = await Promise.all(devices.map((d) => connectDevice(d, gw.ready.mqttsPort, gw.ready.caFile)));
  t.teardown(() => clients.forEach((c) => void c.end(true)));

  const acked: string[] = [];
  const sends: Promise<void>[] = [];
  // Round by round, every device one message, the rounds a turn of the event loop apart, none
  // waiting for its acknowledgement: batches then hold messages of many devices.
  for (let seq = 1; seq <= PER_DEVICE; seq++) {
    devices.forEach((dev, i) => {
      const m = signedTelemetry(dev, seq);
      // Device 0 sends one message with a corrupted signature in the middle of its stream.
      if (i === 0 && seq === FORGED_SEQ) m.payload[m.payload.length - 1]! ^= 0x01;
      sends.push(publishQos1(clients[i]!, m.topic, m.payload).then(() => void acked.push(`${dev.id}:${seq}`)));
    });
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(sends);

  const store = gw.gateway.store;
  const total = DEVICES * PER_DEVICE;
  t.equal(acked.length, total, 'every publish acknowledged, the forged one too (acknowledged and dropped)');
  t.equal(store.counters.get('accepted'), total - 1);
  t.equal(store.counters.get('rejected.EDGEGW_COSE_BAD_SIGNATURE'), 1);
  const rows = store.outbox.read(0, total + 10, 1 << 24);
  t.equal(rows.length, total - 1);
  for (const dev of devices) {
    const expected = Array.from({ length: PER_DEVICE }, (_, k) => k + 1).filter((s) => dev !== devices[0] || s !== FORGED_SEQ);
    t.same(rows.filter((r) => r.deviceId === dev.id).map((r) => r.seq), expected, `${dev.id}: stored in the order sent`);
  }
  // A device's stored messages are acknowledged in the order it sent them. (A refused one is
  // answered as soon as it is judged, possibly before earlier ones are on disk.)
  for (const dev of devices) {
    const seqs = acked.filter((a) => a.startsWith(`${dev.id}:`) && a !== `${devices[0]!.id}:${FORGED_SEQ}`).map((a) => Number(a.split(':')[1]));
    t.same(seqs, [...seqs].sort((a, b) => a - b), `${dev.id}: stored messages acknowledged in the order sent`);
  }
  const { batches, jobs } = gw.gateway.verifyStats();
  t.equal(jobs, total, 'every check ran on a worker');
  t.ok(batches < jobs, `checks went out in batches (${jobs} in ${batches})`);
});
